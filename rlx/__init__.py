"""rlx: JAX-accelerated end-to-end RL benchmark suite.

A training run is a pure function compiled with its environment into one XLA program and vmapped
over seeds and hyperparameter grids (`rlx.run`). The repository's top-level ``envs/`` and
``algos/`` directories install as the subpackages `rlx.envs` and `rlx.algos`.
"""

from __future__ import annotations

import inspect
from typing import Any

__version__ = "0.1.0"


def run(algo: str, env: str, **kwargs: Any) -> dict[str, Any]:
    """Trains `algo` on `env` for every seed x grid point in one program; returns the run record.

    Keyword arguments: those of `rlx.runner.plan` (seeds, overrides — the budget is
    ``overrides={"total_steps": N}`` —, grid, num_evals, eval_episodes, env_kwargs, assets) and
    of `rlx.runner.run` (runs_per_slice, progress, devices, checkpoint_dir, callback, started,
    accept_revision_change). An unknown keyword raises TypeError naming the allowed ones.
    """
    from rlx import runner

    plan_keys = set(inspect.signature(runner.plan).parameters) - {"algo", "env"}
    run_keys = set(inspect.signature(runner.run).parameters) - {"rp"}
    extra = set(kwargs) - plan_keys - run_keys
    if extra:
        raise TypeError(
            f"rlx.run() got unexpected keyword(s) {', '.join(sorted(extra))}; "
            f"allowed: {', '.join(sorted(plan_keys | run_keys))}."
        )
    rp = runner.plan(algo, env, **{k: v for k, v in kwargs.items() if k in plan_keys})
    return runner.run(rp, **{k: v for k, v in kwargs.items() if k in run_keys})
