"""The runner: `seeds x grid` runs of one algorithm on one environment as one compiled program.

Pure part: `init`, a chunk of `update`s (`lax.scan`) and evaluation, each `jit(vmap(...))` over
the run axis, sharded over every device. Impure part (this module's `run`): validation, the
progress bar, timing, fetching aggregated per-chunk metrics, and the run record. Seed ``i`` of a
batched run reproduces the single run with seed ``i``: every run's randomness derives from
``PRNGKey(seed)`` alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rlx import algorithm, envs
from rlx import config as cfg
from rlx.checkpoint import RunCheckpointer
from rlx.errors import RlxError, unknown
from rlx.evaluation import evaluate
from rlx.metrics import DEFAULT, aggregate
from rlx.provenance import provenance


def _donated_args() -> tuple[int, ...]:
    """Donate the chunk's input state on accelerators (halves peak memory); not on the CPU,
    where donation saves little and an executable waiting on donated buffers was seen to hang
    (jax 0.10.2, 2 busy cores)."""
    return () if jax.default_backend() == "cpu" else (0,)


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A validated batch of runs: which algorithm, env, configs and seeds, and how to chunk it."""

    algo: str
    env: str
    env_kwargs: dict[str, Any]
    base_config: Any
    grid: dict[str, list[Any]]
    seeds: tuple[int, ...]
    num_evals: int
    eval_episodes: int

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


def plan(
    algo: str,
    env: str,
    *,
    seeds: int | Sequence[int] = 1,
    total_steps: int | None = None,
    overrides: dict[str, Any] | None = None,
    grid: dict[str, list[Any]] | None = None,
    num_evals: int = 10,
    eval_episodes: int = 16,
    env_kwargs: dict[str, Any] | None = None,
) -> RunPlan:
    """Validates everything about a batch of runs before anything is built; raises RlxError."""
    module = algorithm.get(algo)
    envs.check_name(env)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list or (isinstance(seeds, int) and seeds <= 0):
        raise RlxError(f"seeds must be a positive integer, got {seeds}.")
    if len(set(seed_list)) != len(seed_list):
        raise RlxError(f"seeds must be distinct, got {seed_list}.")
    for name, value in (("num_evals", num_evals), ("eval_episodes", eval_episodes)):
        if not isinstance(value, int) or value <= 0:
            raise RlxError(f"{name} must be a positive integer, got {value!r}.")
    overrides = dict(overrides or {})
    if total_steps is not None:
        overrides["total_steps"] = total_steps
    known = cfg.fields(module.Config)
    for key in list(overrides) + list(grid or {}):
        if key not in known:
            raise unknown(f"{algo} setting", key, known)
    for key, values in (grid or {}).items():
        if not cfg.is_hparam(known[key]):
            raise RlxError(f"cannot grid over static field {key!r}; it changes the program.")
        if not values:
            raise RlxError(f"grid for {key!r} is empty; give at least one value.")
    base = module.make_config(**overrides)
    base.validate()
    for point in cfg.grid_points(grid or {}):
        base.replace(**point).validate()
    if base.num_updates % num_evals:
        raise RlxError(
            f"num_evals={num_evals} must divide the number of updates "
            f"total_steps/steps_per_update = {base.total_steps}/{base.steps_per_update} = "
            f"{base.num_updates}."
        )
    env_obj = envs.make(env, **dict(env_kwargs or {}))  # bad keywords fail here, not mid-run
    module.check_env(env_obj, base)  # e.g. algorithms that need a baseline controller
    return RunPlan(
        algo, env, dict(env_kwargs or {}), base, dict(grid or {}), tuple(seed_list),
        num_evals, eval_episodes,
    )  # fmt: skip


@dataclasses.dataclass
class Programs:
    """The three compiled programs of a slice, and their compile seconds."""

    init: Callable
    chunk: Callable
    evaluate: Callable
    compile_s: float
    traces: dict[str, int]
    state_spec: Any


def _build_programs(rp: RunPlan, env, keys, configs, sharding) -> Programs:
    """Lowers and compiles init, one chunk and evaluation for a batch shaped like `keys`.

    Compiled ahead of time: the chunk program is traced once (``traces`` counts it), and a state
    whose dtypes drifted (weak types, int/float) is refused with an error instead of silently
    recompiled, since a compiled executable accepts only its own input signature.
    """
    module = algorithm.get(rp.algo)
    ep_len = getattr(rp.base_config, "episode_length", 0) or envs.episode_length(env)
    rules = module.metric_rules(env)
    traces = {"chunk": 0}

    def init_one(key, config):
        return module.init(jax.random.split(key)[0], env, config, None)

    def chunk_one(state):
        traces["chunk"] += 1

        def body(s, _):
            return module.update(env, s, None)

        state, metrics = jax.lax.scan(body, state, None, length=rp.updates_per_chunk)
        return state, aggregate(metrics, rules)

    def eval_one(state, key, index):
        act = module.policy(state, env)
        eval_key = jax.random.fold_in(jax.random.split(key)[1], index)
        return evaluate(env, act, eval_key, rp.eval_episodes, ep_len)

    start = time.perf_counter()
    init_j = jax.jit(jax.vmap(init_one), out_shardings=sharding)
    init_c = init_j.lower(keys, configs).compile()
    state_shape = jax.eval_shape(init_j, keys, configs)
    state_spec = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), state_shape
    )
    chunk_c = (
        jax.jit(jax.vmap(chunk_one), out_shardings=sharding, donate_argnums=_donated_args())
        .lower(state_spec)
        .compile()
    )
    index = jax.ShapeDtypeStruct((), jnp.int32)
    eval_c = (
        jax.jit(jax.vmap(eval_one, in_axes=(0, 0, None)), out_shardings=sharding)
        .lower(state_spec, keys, index)
        .compile()
    )
    return Programs(init_c, chunk_c, eval_c, time.perf_counter() - start, traces, state_spec)


def _to_global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A host array (identical on every process) as a global array sharded over the run axis."""
    return jax.make_array_from_callback(array.shape, sharding, lambda idx: array[idx])


def _fetch(tree: Any) -> Any:
    """Device arrays to host numpy, gathering across processes on a multi-host run."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, jax.device_get(tree))


def _slices(n_runs: int, n_devices: int, runs_per_slice: int | None) -> list[tuple[int, int]]:
    """[start, stop) ranges of runs; each slice is padded to a multiple of the device count."""
    size = n_runs if runs_per_slice is None else max(1, min(runs_per_slice, n_runs))
    return [(start, min(start + size, n_runs)) for start in range(0, n_runs, size)]


def _plan_spec(rp: RunPlan) -> dict[str, Any]:
    """What a plan runs, as JSON-ready data (hashed, and copied into the run record)."""
    return {
        "algo": rp.algo,
        "env": rp.env,
        "env_kwargs": rp.env_kwargs,
        "config": cfg.to_dict(rp.base_config),
        "grid": rp.grid,
        "seeds": list(rp.seeds),
    }


def plan_hash(rp: RunPlan) -> str:
    """SHA-256 of everything that determines a batch's numbers (not how it is executed)."""
    spec = {
        "format": 1,
        **_plan_spec(rp),
        "num_evals": rp.num_evals,
        "eval_episodes": rp.eval_episodes,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _fits_in_memory(programs: Programs, devices: Sequence[jax.Device]) -> bool:
    """False when the chunk program's memory estimate exceeds 90% of a device's memory limit
    (devices that report no limit, such as CPUs, always fit)."""
    stats = devices[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    analysis = programs.chunk.memory_analysis()
    if not limit or analysis is None:
        return True
    need = sum(
        getattr(analysis, f, 0) or 0
        for f in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    )
    return need <= 0.9 * limit


def _finite_failure(metrics: dict[str, np.ndarray], j: int, rules) -> str | None:
    """The first metric that is NaN/Inf for run j (episode means may be NaN: no episode ended)."""
    for key, value in metrics.items():
        rule = rules.get(key, DEFAULT)
        if not rule.may_be_nan and not np.isfinite(value[j]):
            return key
    return None


def run(
    rp: RunPlan,
    *,
    runs_per_slice: int | None = None,
    progress: bool = True,
    devices: Sequence[jax.Device] | None = None,
    checkpoint_dir: Path | None = None,
    callback: Callable[[int, dict[int, dict[str, float]]], None] | None = None,
) -> dict[str, Any]:
    """Executes a plan and returns its run record (a JSON-ready dict; see `rlx.record`).

    With `checkpoint_dir`, the full batched state is checkpointed after every chunk and an
    earlier interrupted execution of the same plan (same `plan_hash`) resumes from its last
    checkpoint, ending with the same numbers as an uninterrupted run. A checkpoint of a
    different plan is refused. A run whose metrics turn NaN/Inf is marked failed at that env
    step and its later points are NaN; the other runs of the batch go on. `callback(env_steps,
    {run index: metrics})` is called at every evaluation point (for live logging).
    """
    module = algorithm.get(rp.algo)
    env = envs.make(rp.env, **rp.env_kwargs)
    rules = module.metric_rules(env)
    devices = list(devices or jax.devices())
    mesh = Mesh(np.array(devices), ("runs",))
    sharding = NamedSharding(mesh, PartitionSpec("runs"))
    configs_all = [cfg.as_leaves(rp.base_config.replace(**p)) for p in rp.points]
    runs = rp.runs
    digest = plan_hash(rp)
    steps_per_chunk = rp.updates_per_chunk * rp.base_config.steps_per_update
    curves: list[dict[str, list[float]]] = [dict() for _ in runs]
    failures: dict[str, dict[str, Any]] = {}
    timing = {"compile_s": 0.0, "train_s": 0.0, "eval_s": 0.0, "wall_s": 0.0}
    slice_size = runs_per_slice
    resume: dict[str, Any] | None = None
    ckpt = RunCheckpointer(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:
        resume = ckpt.latest_meta()
        if resume is not None:
            if resume["hash"] != digest:
                raise RlxError(
                    f"checkpoint in {str(checkpoint_dir)!r} belongs to a different configuration "
                    f"(hash {resume['hash']} != {digest}); remove it or write elsewhere."
                )
            curves, failures, timing = resume["curves"], resume["failures"], resume["timing"]
            slice_size = resume["slice_size"]
    resumed = resume is not None
    traces = 0
    wall = time.perf_counter() - timing["wall_s"]
    bar = _Progress(len(runs) * rp.base_config.total_steps, enabled=progress)
    with bar:
        slices = _slices(len(runs), len(devices), slice_size)
        s_index = 0
        while s_index < len(slices):
            start, stop = slices[s_index]
            ids = list(range(start, stop))
            done_chunks = -1  # chunks of this slice already recorded (-1: not even step 0)
            if resume is not None and resume["slice"] > s_index:
                bar.advance(len(ids) * rp.base_config.total_steps, timing["train_s"])
                s_index += 1
                continue
            if resume is not None and resume["slice"] == s_index:
                done_chunks = resume["chunk"]
            pad = (-len(ids)) % len(devices)
            ids_padded = ids + [ids[-1]] * pad
            keys = np.stack([np.asarray(jax.random.PRNGKey(runs[i][1])) for i in ids_padded])
            configs = cfg.stack([configs_all[runs[i][0]] for i in ids_padded])
            keys = _to_global(keys, sharding)
            configs = jax.tree.map(lambda x: _to_global(np.asarray(x), sharding), configs)
            programs = _build_programs(rp, env, keys, configs, sharding)
            timing["compile_s"] += programs.compile_s
            if (
                slice_size is None
                and not _fits_in_memory(programs, devices)
                and len(ids) > len(devices)
            ):
                slice_size = max(len(devices), len(ids) // 2)
                slices = _slices(len(runs), len(devices), slice_size)
                continue  # recompile this slice at half the size
            if done_chunks >= 0:
                state = ckpt.restore_state(programs.state_spec)
            else:
                state = programs.init(keys, configs)

            def record(
                chunk_index: int, state, train_metrics=None, ids=ids, keys=keys, programs=programs
            ):
                t0 = time.perf_counter()
                ev = _fetch(programs.evaluate(state, keys, jnp.int32(chunk_index)))
                timing["eval_s"] += time.perf_counter() - t0
                metrics = dict(ev)
                if train_metrics is not None:
                    metrics.update(train_metrics)
                for j, i in enumerate(ids):
                    curve = curves[i]
                    curve.setdefault("env_steps", []).append(chunk_index * steps_per_chunk)
                    bad = _finite_failure(metrics, j, rules)
                    if bad is not None and str(i) not in failures:
                        failures[str(i)] = {
                            "env_steps": chunk_index * steps_per_chunk,
                            "metric": bad,
                        }
                    for key, value in metrics.items():
                        curve.setdefault(key, []).append(
                            float("nan") if str(i) in failures else float(value[j])
                        )
                if callback is not None:
                    callback(
                        chunk_index * steps_per_chunk,
                        {
                            i: {k: float(v[j]) for k, v in metrics.items()}
                            for j, i in enumerate(ids)
                        },
                    )

            def save(chunk_index: int, state, s_index=s_index, slice_size=slice_size) -> None:
                if ckpt is not None:
                    timing["wall_s"] = time.perf_counter() - wall
                    meta = {
                        "hash": digest, "slice": s_index, "chunk": chunk_index,
                        "slice_size": slice_size, "curves": curves, "failures": failures,
                        "timing": timing,
                    }  # fmt: skip
                    ckpt.save(s_index * (rp.num_evals + 1) + chunk_index, state, meta)
                    _test_kill_hook(s_index * (rp.num_evals + 1) + chunk_index)

            if done_chunks < 0:
                record(0, state)
                save(0, state)
                done_chunks = 0
            bar.advance(len(ids) * done_chunks * steps_per_chunk, timing["train_s"])
            for chunk_index in range(done_chunks + 1, rp.num_evals + 1):
                t0 = time.perf_counter()
                state, train_metrics = programs.chunk(state)
                train_metrics = _fetch(train_metrics)
                timing["train_s"] += time.perf_counter() - t0
                bar.advance(len(ids) * steps_per_chunk, timing["train_s"])
                record(chunk_index, state, train_metrics)
                save(chunk_index, state)
            traces = max(traces, programs.traces["chunk"])
            resume = None
            s_index += 1
    if ckpt is not None:
        ckpt.close()
    timing["wall_s"] = time.perf_counter() - wall
    total_env_steps = len(runs) * rp.base_config.num_updates * rp.base_config.steps_per_update
    timing["env_steps_total"] = total_env_steps
    timing["env_steps_per_s"] = total_env_steps / max(timing["train_s"], 1e-9)
    for curve in curves:  # training metrics start after the first chunk: align with env_steps
        for values in curve.values():
            values[:0] = [float("nan")] * (len(curve["env_steps"]) - len(values))
    run_rows = []
    for i, (g, seed) in enumerate(runs):
        final = {k: v[-1] for k, v in curves[i].items()}
        row = {
            "run": i,
            "seed": seed,
            "grid_point": rp.points[g],
            "final": final,
            "curve": curves[i],
        }
        if str(i) in failures:
            row["failed"] = failures[str(i)]
        run_rows.append(row)
    return {
        "kind": "rlx.run",
        "config_hash": digest,
        **_plan_spec(rp),
        "budget": {
            "total_steps_per_run": rp.base_config.total_steps,
            "num_evals": rp.num_evals,
            "eval_episodes": rp.eval_episodes,
            "steps_per_update": rp.base_config.steps_per_update,
        },
        "execution": {
            "devices": len(devices),
            "slices": len(slices),
            "runs": len(runs),
            "chunk_traces": traces,
            "resumed": resumed,
        },
        "timing": timing,
        "provenance": provenance(),
        "runs": run_rows,
        "module": module.name,
    }


def _test_kill_hook(step: int) -> None:
    """For the resume tests: ``RLX_TEST_KILL_AT_CHECKPOINT=N`` SIGKILLs this process right after
    checkpoint N is written, as an operator's ``kill -9`` would."""
    target = os.environ.get("RLX_TEST_KILL_AT_CHECKPOINT")
    if target is not None and int(target) == step:
        os.kill(os.getpid(), signal.SIGKILL)


class _Progress:
    """A rich progress bar with env-steps/s, or nothing when disabled."""

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} env steps"),
                TextColumn("{task.fields[sps]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self._task = self._progress.add_task("train", total=total, sps="")

    def __enter__(self):
        if self.enabled:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._progress.__exit__(*exc)

    def advance(self, steps: int, train_s: float) -> None:
        if self.enabled:
            done = self._progress.tasks[0].completed + steps
            self._progress.update(
                self._task, completed=done, sps=f"{done / max(train_s, 1e-9):,.0f} steps/s"
            )
