"""rlx: JAX-accelerated end-to-end RL benchmark suite.

A training run is a pure function compiled with its environment into one XLA program and vmapped
over seeds and hyperparameter grids (`rlx.run`). The repository's top-level ``envs/`` and
``algos/`` directories install as the subpackages `rlx.envs` and `rlx.algos`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def run(algo: str, env: str, **kwargs: Any) -> dict[str, Any]:
    """Trains `algo` on `env` for every seed x grid point in one program; returns the run record.

    Keyword arguments: those of `rlx.runner.plan` (seeds, total_steps, overrides, grid,
    num_evals, eval_episodes, env_kwargs) and of `rlx.runner.run` (runs_per_slice, progress,
    devices).
    """
    from rlx import runner

    run_keys = {"runs_per_slice", "progress", "devices"}
    rp = runner.plan(algo, env, **{k: v for k, v in kwargs.items() if k not in run_keys})
    return runner.run(rp, **{k: v for k, v in kwargs.items() if k in run_keys})
