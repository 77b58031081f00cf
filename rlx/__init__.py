"""rlx: JAX-accelerated end-to-end RL benchmark suite.

A training run is a pure function compiled with its environment into one XLA program and vmapped
over seeds and hyperparameter grids (`rlx.run`, `rlx.train`); a trained policy is exported as
an artifact directory and loaded back with `rlx.load_policy`. The repository's top-level
``envs/`` and ``algos/`` directories install as the subpackages `rlx.envs` and `rlx.algos`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def run(
    algo: str | Any,
    env: str | Any,
    *,
    seeds: int | Sequence[int] = 1,
    overrides: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    num_evals: int = 10,
    eval_episodes: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    assets: Mapping[str, str | Path] | None = None,
    runs_per_slice: int | None = None,
    progress: bool = True,
    devices: Sequence[Any] | None = None,
    checkpoint_dir: str | Path | None = None,
    callback: Callable[[int, dict[int, dict[str, float]]], None] | None = None,
    started: dict[str, Any] | None = None,
    accept_revision_change: bool = False,
    on_slice_end: Callable[[list[int], Any], None] | None = None,
) -> dict[str, Any]:
    """Trains `algo` on `env` for every seed x grid point in one program; returns the run record.

    The plan's keywords are `rlx.runner.plan`'s: `seeds` (a count N for seeds 0..N-1, or a
    list), `overrides` (config fields; the budget is ``{"total_steps": N}``), `grid`
    (hyperparameter lists vmapped in the same program), `num_evals`, `eval_episodes`,
    `env_kwargs`, `assets` (name -> path). How it runs is `rlx.runner.run`'s: `runs_per_slice`,
    `progress`, `devices`, `checkpoint_dir` (resumable checkpoints), `callback(steps, {run:
    metrics})` at every evaluation point, `started` (provenance), `accept_revision_change`,
    `on_slice_end(run indices, state)`. `rlx.train` also keeps the final states and can write
    a run directory.
    """
    from rlx import runner

    rp = runner.plan(algo, env, seeds=seeds, overrides=overrides, grid=grid, num_evals=num_evals,
                     eval_episodes=eval_episodes, env_kwargs=env_kwargs, assets=assets)  # fmt: skip
    return runner.run(
        rp, runs_per_slice=runs_per_slice, progress=progress, devices=devices,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
        callback=callback, started=started, accept_revision_change=accept_revision_change,
        on_slice_end=on_slice_end,
    )  # fmt: skip


def __getattr__(name: str) -> Any:
    """`train`, `Result`, `make_train` and `configure` from `rlx.api`, `load_policy` from
    `rlx.policy`, `check_env` from `rlx.envs.contract` (imported on first use)."""
    if name in ("train", "Result", "make_train", "configure"):
        from rlx import api

        return getattr(api, name)
    if name == "load_policy":
        from rlx import policy

        return policy.load_policy
    if name == "check_env":  # the environment contract's checker, rlx.envs.contract
        from rlx.envs import contract

        return contract.check_env
    if name in ("register_algorithm", "get_algorithm"):  # names from outside (rlx.plugins)
        from rlx import algorithm

        return getattr(algorithm, name)
    if name == "register_env":
        from rlx import envs

        return envs.register_env
    raise AttributeError(f"module 'rlx' has no attribute {name!r}")
