"""rlx: JAX-accelerated end-to-end RL benchmark suite.

A training run is a pure function compiled with its environment into one XLA program and vmapped
over seeds and hyperparameter grids (`rlx.run`, `rlx.train`); a trained policy is exported as
an artifact directory and loaded back with `rlx.load_policy`. The repository's top-level
``envs/`` and ``algos/`` directories install as the subpackages `rlx.envs` and `rlx.algos`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def run(algo: str, env: str, **kwargs: Any) -> dict[str, Any]:
    """Trains `algo` on `env` for every seed x grid point in one program; returns the run record.

    Keyword arguments: those of `rlx.runner.plan` (seeds, overrides — the budget is
    ``overrides={"total_steps": N}`` —, grid, num_evals, eval_episodes, env_kwargs, assets) and
    of `rlx.runner.run` (runs_per_slice, progress, devices, checkpoint_dir, callback, started,
    accept_revision_change, on_slice_end). An unknown keyword raises TypeError naming the
    allowed ones.
    """
    from rlx import runner
    from rlx.api import _keywords

    plan_keys, run_keys = _keywords(kwargs)
    rp = runner.plan(algo, env, **{k: v for k, v in kwargs.items() if k in plan_keys})
    return runner.run(rp, **{k: v for k, v in kwargs.items() if k in run_keys})


def __getattr__(name: str) -> Any:
    """`train`, `Result`, `make_train` and `configure` from `rlx.api`, `load_policy` from
    `rlx.policy` (imported on first use)."""
    if name in ("train", "Result", "make_train", "configure"):
        from rlx import api

        return getattr(api, name)
    if name == "load_policy":
        from rlx import policy

        return policy.load_policy
    raise AttributeError(f"module 'rlx' has no attribute {name!r}")
