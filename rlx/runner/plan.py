"""A validated batch of runs (`RunPlan`) and its hash: everything checked before anything runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlx import algorithm, envs, spec
from rlx import config as cfg
from rlx.data.assets import Asset
from rlx.data.assets import resolve as resolve_assets
from rlx.envs import contract
from rlx.errors import RlxError
from rlx.evaluation import check_episodes, default_episodes


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A validated batch of runs: which algorithm, env, configs, seeds and assets, and how often
    to evaluate.

    `algo` and `env` are the names that the plan hash and the records hold (`plan_spec`);
    `record` and `env_factory` are what they were resolved to when the plan was made (an
    object given by the caller, or what the name imported), used by every part that builds
    the runs; they take no part in equality, the hash or the records.
    """

    algo: str
    env: str
    env_kwargs: dict[str, Any]
    base_config: Any
    grid: dict[str, list[Any]]
    seeds: tuple[int, ...]
    num_evals: int
    eval_episodes: int
    assets: dict[str, Asset] = dataclasses.field(default_factory=dict)
    record: algorithm.Algorithm | None = dataclasses.field(default=None, compare=False, repr=False)
    """The resolved algorithm record (None: resolve `algo` again)."""
    env_factory: Callable[..., Any] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    """``env_factory(**env_kwargs) -> Env`` (None: build `env` by name with `rlx.envs.make`)."""

    @property
    def algorithm(self) -> algorithm.Algorithm:
        """The algorithm record (the one resolved when the plan was made)."""
        return self.record if self.record is not None else algorithm.get_algorithm(self.algo)

    @property
    def points(self) -> list[dict[str, Any]]:
        """Grid points (overrides of the base config), one empty dict without a grid."""
        return cfg.grid_points(self.grid)

    @property
    def runs(self) -> list[tuple[int, int]]:
        """(grid point index, seed) of every run, grid-major."""
        return [(g, s) for g in range(len(self.points)) for s in self.seeds]

    @property
    def updates_per_chunk(self) -> int:
        """Updates between two evaluations."""
        return self.base_config.num_updates // self.num_evals

    @property
    def steps_per_chunk(self) -> int:
        """Budget units (env steps, gradient steps, ...) consumed per run between evaluations."""
        return self.updates_per_chunk * self.base_config.steps_per_update

    def make_env(self):
        """The (unwrapped) environment of every run, built by the factory resolved when the plan
        was made."""
        if self.env_factory is None:
            return envs.make(self.env, **self.env_kwargs)
        return self.env_factory(**self.env_kwargs)


def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """A count N (seeds 0..N-1) or a list of seeds as the list of seeds; raises RlxError naming
    the bad value unless the seeds are distinct non-negative integers, at least one."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds <= 0:
            raise RlxError(f"seeds must be a positive integer, got {seeds}.")
        return list(range(seeds))
    try:
        values = [] if isinstance(seeds, str | bytes) else list(seeds)
    except TypeError:
        values = []
    if not values:
        raise RlxError(
            f"seeds must be a positive integer or a non-empty list of seeds, got {seeds!r}."
        )
    out: list[int] = []
    for s in values:
        if isinstance(s, bool) or not isinstance(s, int | np.integer):
            raise RlxError(f"seed {s!r} is not an integer.")
        if s < 0:
            raise RlxError(f"seed {s} is negative; seeds are integers >= 0.")
        if int(s) in out:
            raise RlxError(f"seed {s} is given twice; seeds must be distinct.")
        out.append(int(s))
    return out


def _check_counts(num_evals: Any, eval_episodes: Any) -> None:
    for name, value in (("num_evals", num_evals), ("eval_episodes", eval_episodes)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise RlxError(f"{name} must be a positive integer, got {value!r}.")


def _check_budget(base: Any, num_evals: int) -> None:
    if base.num_updates % num_evals:
        raise RlxError(
            f"num_evals={num_evals} must divide the number of updates "
            f"total_steps/steps_per_update = {base.total_steps}/{base.steps_per_update} = "
            f"{base.num_updates}."
        )


def plan(
    algo: str | algorithm.Algorithm,
    env: str | Any,
    *,
    seeds: int | Sequence[int] = 1,
    overrides: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    num_evals: int = 10,
    eval_episodes: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    assets: Mapping[str, str | Path] | None = None,
) -> RunPlan:
    """Validates everything about a batch of runs before anything is built; raises RlxError.

    `overrides` and `grid` go through `rlx.spec.resolve` (the one override path; the budget is
    the ``total_steps`` override); `assets` maps the algorithm's asset names to files;
    `eval_episodes` defaults to `rlx.evaluation.default_episodes` (16, or the next multiple of
    the env's evaluation tasks).

    `algo` is an algorithm name (built-in, registered, entry point or ``package.module:ATTR``;
    `rlx.algorithm.get_algorithm`) or an `Algorithm` record, which the plan names by
    `rlx.algorithm.name_of`; `env` an environment name, an Env instance, or an Env class or
    factory, named by `rlx.envs.resolve_env`. The plan holds the resolved record and env
    factory; names of built-in algorithms and environments hash as they always have.
    """
    record = algorithm.get_algorithm(algo)
    algo_name = algo if isinstance(algo, str) else algorithm.name_of(record)
    env_name, env_factory = envs.resolve_env(env)
    seeds_ = seed_list(seeds)
    env_obj = env_factory(**dict(env_kwargs or {}))  # bad keywords fail here, not mid-run
    if not envs.is_builtin(env_name):  # outside code: the contract's shapes, before any build
        contract.require_env(env_obj, env_name)
    if eval_episodes is None:
        eval_episodes = default_episodes(env_obj)
    _check_counts(num_evals, eval_episodes)
    settings = spec.resolve(record, overrides, grid)
    base = record.make_config(**settings.overrides)
    base.validate()
    for point in cfg.grid_points(settings.grid):
        base.replace(**point).validate()
    _check_budget(base, num_evals)
    record.check_env(env_obj, base)
    check_episodes(env_obj, eval_episodes)
    resolved = resolve_assets(record.assets, dict(assets or {}), env_obj, base, algo_name)
    return RunPlan(
        algo_name, env_name, dict(env_kwargs or {}), base, settings.grid, tuple(seeds_),
        num_evals, eval_episodes, resolved, record=record, env_factory=env_factory,
    )  # fmt: skip


def plan_spec(rp: RunPlan) -> dict[str, Any]:
    """What a plan runs, as JSON-ready data (hashed, and copied into the run record)."""
    out = {
        "algo": rp.algo,
        "env": rp.env,
        "env_kwargs": rp.env_kwargs,
        "config": cfg.to_dict(rp.base_config),
        "grid": rp.grid,
        "seeds": list(rp.seeds),
    }
    if rp.assets:  # absent without assets, so earlier plans keep their hashes
        out["assets"] = {name: a.identity() for name, a in sorted(rp.assets.items())}
    return out


def plan_hash(rp: RunPlan) -> str:
    """SHA-256 of everything that determines a batch's numbers (not how it is executed):
    `data_hash` of `hash_data`."""
    return data_hash(hash_data(rp))


def hash_data(rp: RunPlan) -> dict[str, Any]:
    """What `plan_hash` hashes: `plan_spec` with the evaluation counts. An asset counts by its
    content hash alone: the same data under another path (another home directory or asset
    cache) is the same plan."""
    data = {
        "format": 1,
        **plan_spec(rp),
        "num_evals": rp.num_evals,
        "eval_episodes": rp.eval_episodes,
    }
    if rp.assets:
        data["assets"] = {name: a.sha256 for name, a in sorted(rp.assets.items())}
    return data


def data_hash(data: Mapping[str, Any]) -> str:
    """The first 16 hex digits of the SHA-256 of `data` as sorted-key JSON."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
