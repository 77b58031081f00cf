"""Executing a plan: slices of runs, each as compiled chunks, evaluated and checkpointed.

``run`` is the impure outer loop around the pure programs of `rlx.runner.programs`::

    run -> choose_slice_size                 # halve until the chunk program fits a device
        -> for each slice: _run_slice        # init or restore, then chunks
               -> _chunk                     # one compiled chunk of updates
               -> _evaluation_point          # evaluate, append curves, callback
               -> Store.save                 # checkpoint state + curves + timing
        -> result.build                      # the run record
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlx import config as cfg
from rlx.metrics import MetricRule
from rlx.provenance import code_identity, provenance
from rlx.runner import programs as progs
from rlx.runner import result
from rlx.runner.curves import Curves
from rlx.runner.plan import RunPlan, plan_hash
from rlx.runner.progress import Progress
from rlx.runner.store import Position, Resume, Store, Timing, store_for

Callback = Callable[[int, dict[int, dict[str, float]]], None]
SliceEnd = Callable[[list[int], Any], None]
"""``on_slice_end(run indices, final batched state of the slice)``; the state's leading axis
may be padded past ``len(indices)`` (see `host_rows`)."""


def host_rows(state: Any, n: int) -> Any:
    """The first `n` runs of a batched device state, as host numpy arrays."""
    return jax.tree.map(lambda x: np.asarray(x)[:n], progs.fetch(state))


@dataclasses.dataclass
class Batch:
    """Everything the slices of one plan share, built once."""

    rp: RunPlan
    env: Any
    rules: dict[str, MetricRule]
    layout: progs.Layout
    assets: dict[str, Any]
    configs: list[Any]
    programs: dict[int, progs.Programs]
    timing: Timing
    curves: Curves
    _inputs: dict[tuple[int, ...], tuple[jax.Array, Any]] = dataclasses.field(default_factory=dict)

    @classmethod
    def make(cls, rp: RunPlan, devices: Sequence[jax.Device], resume: Resume | None) -> Batch:
        """Env, metric rules, device layout, assets placed once (replicated), configs per grid
        point, and the curves and timing so far (from a checkpoint when resuming)."""
        env = rp.make_env()
        layout = progs.Layout.over(devices)
        algo = rp.algorithm
        assets = {
            name: jax.tree.map(lambda x: progs.to_global(x, layout.replicated),
                               a.data(algo.assets[name]))
            for name, a in rp.assets.items()
        }  # fmt: skip
        configs = [cfg.as_leaves(rp.base_config.replace(**p)) for p in rp.points]
        if resume is None:
            curves, timing = Curves.empty(algo.unit.value, len(rp.runs)), Timing()
        else:
            curves, timing = Curves.from_json(resume.curves), resume.timing
        return cls(rp, env, dict(algo.metric_rules(env)), layout, assets, configs, {}, timing,
                   curves)  # fmt: skip

    def padded(self, ids: list[int]) -> list[int]:
        """`ids` padded (repeating the last) to a multiple of the device count."""
        return ids + [ids[-1]] * ((-len(ids)) % len(self.layout.devices))

    def inputs(self, ids: list[int]) -> tuple[jax.Array, Any]:
        """PRNG keys and stacked configs of the runs `ids` (padded), sharded over the runs
        (built once per slice)."""
        if tuple(ids) not in self._inputs:
            self._inputs[tuple(ids)] = self._build_inputs(ids)
        return self._inputs[tuple(ids)]

    def _build_inputs(self, ids: list[int]) -> tuple[jax.Array, Any]:
        runs = self.rp.runs
        padded = self.padded(ids)
        keys = np.stack([np.asarray(jax.random.PRNGKey(runs[i][1])) for i in padded])
        configs = cfg.stack([self.configs[runs[i][0]] for i in padded])
        shard = self.layout.runs
        return progs.to_global(keys, shard), jax.tree.map(
            lambda x: progs.to_global(x, shard), configs
        )

    def programs_for(self, ids: list[int]) -> progs.Programs:
        """The compiled programs for a slice of len(padded(ids)) runs (compiled once per size)."""
        size = len(self.padded(ids))
        if size not in self.programs:
            keys, configs = self.inputs(ids)
            built = progs.build(self.rp, self.env, keys, configs, self.assets, self.layout)
            self.timing.compile_s += built.compile_s
            self.programs[size] = built
        return self.programs[size]


def choose_slice_size(batch: Batch, requested: int | None) -> int:
    """Runs per slice: `requested` (capped at the batch), else the whole batch halved until
    its chunk program fits in a device's memory (or a slice is one run per device)."""
    n, d = len(batch.rp.runs), len(batch.layout.devices)
    if requested is not None:
        return max(1, min(requested, n))
    size = n
    while size > d and not progs.fits_in_memory(batch.programs_for(list(range(size))),
                                                batch.layout.devices):  # fmt: skip
        size = max(d, size // 2)
    return size


def slices(n_runs: int, size: int) -> list[list[int]]:
    """The run indices of each slice, in order."""
    return [list(range(s, min(s + size, n_runs))) for s in range(0, n_runs, size)]


def _evaluation_point(
    batch: Batch, programs: progs.Programs, state, ids: list[int], index: int,
    train_metrics: dict[str, np.ndarray] | None, callback: Callback | None,
) -> None:  # fmt: skip
    """Evaluates the slice's policies at point `index`, appends every metric to the curves
    and calls `callback(steps, {run: metrics})`."""
    t0 = time.perf_counter()
    keys, _ = batch.inputs(ids)
    ev = progs.fetch(programs.evaluate(state, keys, jnp.int32(index), batch.assets))
    batch.timing.eval_s += time.perf_counter() - t0
    metrics = {**ev, **(train_metrics or {})}
    steps = index * batch.rp.steps_per_chunk
    batch.curves.add_point(ids, steps, metrics, batch.rules)
    if callback is not None:
        callback(
            steps, {i: {k: float(v[j]) for k, v in metrics.items()} for j, i in enumerate(ids)}
        )


def _chunk(batch: Batch, programs: progs.Programs, state, bar: Progress, runs: int):
    """One compiled chunk of updates; returns the new state and its fetched metrics."""
    t0 = time.perf_counter()
    state, metrics = programs.chunk(state, batch.assets)
    metrics = progs.fetch(metrics)
    batch.timing.train_s += time.perf_counter() - t0
    bar.advance(runs * batch.rp.steps_per_chunk, batch.timing.train_s)
    return state, metrics


def _run_slice(
    batch: Batch, s_index: int, ids: list[int], size: int, done: int | None,
    store: Store | None, bar: Progress, callback: Callback | None, wall0: float,
    on_slice_end: SliceEnd | None,
) -> None:  # fmt: skip
    """Runs slice `s_index` from chunk `done` (a checkpoint's) or from scratch (None)."""
    programs = batch.programs_for(ids)
    rp = batch.rp

    def save(chunk: int, state) -> None:
        if store is not None:
            batch.timing.wall_s = time.perf_counter() - wall0
            store.save(Position(s_index, chunk, size), state, batch.curves.to_json(),
                       batch.timing, rp.num_evals)  # fmt: skip

    if done is None:
        state = programs.init(*batch.inputs(ids), batch.assets)
        _evaluation_point(batch, programs, state, ids, 0, None, callback)
        save(0, state)
        done = 0
    else:
        state = store.restore(programs.state_spec)
    bar.advance(len(ids) * done * rp.steps_per_chunk, batch.timing.train_s)
    for index in range(done + 1, rp.num_evals + 1):
        state, metrics = _chunk(batch, programs, state, bar, len(ids))
        _evaluation_point(batch, programs, state, ids, index, metrics, callback)
        save(index, state)
    if on_slice_end is not None:
        on_slice_end(ids, state)


def run(
    rp: RunPlan,
    *,
    runs_per_slice: int | None = None,
    progress: bool = True,
    devices: Sequence[jax.Device] | None = None,
    checkpoint_dir: Path | None = None,
    callback: Callback | None = None,
    started: dict[str, Any] | None = None,
    accept_revision_change: bool = False,
    on_slice_end: SliceEnd | None = None,
) -> dict[str, Any]:
    """Executes a plan and returns its run record (a JSON-ready dict; see `rlx.record`).

    With `checkpoint_dir`, the full batched state is checkpointed after every chunk and an
    earlier interrupted execution of the same plan (same `plan_hash`) made by the same code
    resumes from its last checkpoint, ending with the same numbers as an uninterrupted run.
    `started` is the provenance read when the run (or the sweep around it) started; it is read
    now if not given. `callback(steps, {run index: metrics})` is called at every evaluation
    point (for live logging); `on_slice_end(run indices, state)` after a slice's last chunk
    (to keep or export the trained states; slices finished before a resume are not repeated).
    """
    started = started or provenance()
    devices = list(devices or jax.devices())
    store = store_for(checkpoint_dir, plan_hash(rp), started)
    resume = store.resume(accept_revision_change) if store is not None else None
    batch = Batch.make(rp, devices, resume)
    wall0 = time.perf_counter() - batch.timing.wall_s
    unit = rp.algorithm.unit
    with Progress(len(rp.runs) * rp.base_config.total_steps, unit.label, progress) as bar:
        size = resume.position.slice_size if resume else choose_slice_size(batch, runs_per_slice)
        parts = slices(len(rp.runs), size)
        for s_index, ids in enumerate(parts):
            if resume is not None and s_index < resume.position.slice:
                bar.advance(len(ids) * rp.base_config.total_steps, batch.timing.train_s)
                continue
            done = resume.position.chunk if resume and s_index == resume.position.slice else None
            _run_slice(batch, s_index, ids, size, done, store, bar, callback, wall0, on_slice_end)
    if store is not None:
        store.close()
    batch.timing.wall_s = time.perf_counter() - wall0
    execution = {
        "devices": len(devices), "slices": len(parts), "runs_per_slice": size,
        "runs": len(rp.runs), "resumed": resume is not None,
    }  # fmt: skip
    if resume is not None and resume.code != code_identity(started):
        execution["resumed_from_code"] = resume.code
    return result.build(rp, batch.env, batch.curves, batch.timing, execution, started)
