"""Live logging of a running batch, used by `rlx.runner.session.train_to_dir` (`rlx train`,
`rlx sweep`, ``rlx.train(out=...)``).

`Live` is the runner's callback (``callback(steps, {run index: metrics})``, called at every
evaluation point). It keeps the batch's learning curves with the runner's own `Curves` (same
failure rule, same alignment), so it can

- rewrite a partial ``curves.csv`` (the format of `rlx.record.curves_csv`) after every point;
- pass every run's values to its sinks under the run's name (``seed_3``, or
  ``learning_rate=0.001/seed_3`` with a grid), and the mean over the seeds of each grid point
  (``mean``, ``learning_rate=0.001/mean``) once every seed of that point has reached it, so
  slices of a batch and a resume after a kill give each mean exactly once.

A sink is `TensorBoard` (one event directory per name, so TensorBoard draws every seed and the
mean of a metric in one chart) or `Wandb` (one wandb run, keys ``<name>/<metric>``, the budget
axis as the x axis). Non-finite values are not logged (the record keeps them).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rlx import files, record
from rlx.errors import RlxError
from rlx.runner.curves import Curves
from rlx.runner.plan import RunPlan, plan_hash, plan_spec
from rlx.runner.result import run_rows


class Sink(Protocol):
    """Where live scalars go."""

    def scalars(self, name: str, steps: int, values: Mapping[str, float]) -> None:
        """`values` of the curve `name` (a seed or a grid point's mean) at `steps`."""

    def flush(self) -> None:
        """Makes everything logged so far visible."""

    def close(self) -> None:
        """Releases files and processes."""


def point_label(point: Mapping[str, Any]) -> str:
    """A grid point as a name, e.g. 'learning_rate=0.001,gamma=0.99' ('' without a grid)."""
    return ",".join(f"{k}={v}" for k, v in point.items())


def curve_names(rp: RunPlan) -> tuple[list[str], list[str]]:
    """The name of every run's curve and of every grid point's mean curve."""
    labels = [point_label(p) for p in rp.points]

    def name(g: int, leaf: str) -> str:
        return f"{labels[g]}/{leaf}" if labels[g] else leaf

    return [name(g, f"seed_{s}") for g, s in rp.runs], [name(g, "mean") for g in range(len(labels))]


class Live:
    """The runner's callback: curves so far, the partial curves file and the sinks.

    `resumed` is the curves of the checkpoint a run resumes from (`rlx.runner.store
    .latest_meta`), whose points were logged by the interrupted process and are not logged
    again.
    """

    def __init__(
        self,
        rp: RunPlan,
        sinks: Sequence[Sink] = (),
        curves_csv: Path | None = None,
        resumed: Mapping[str, Any] | None = None,
    ):
        self.rp = rp
        self.sinks = list(sinks)
        self.curves_csv = curves_csv
        self.rules = dict(rp.algorithm.metric_rules(rp.make_env()))
        axis = rp.algorithm.unit.value
        self.curves = Curves.from_json(resumed) if resumed else Curves.empty(axis, len(rp.runs))
        self.seed_names, self.mean_names = curve_names(rp)
        self.members = [[i for i, (g2, _) in enumerate(rp.runs) if g2 == g]
                        for g in range(len(rp.points))]  # fmt: skip
        self.means_done = [self._common_points(m) for m in self.members]

    def _common_points(self, members: list[int]) -> int:
        """Evaluation points every run of `members` has reached."""
        axis = self.curves.axis
        return min(len(self.curves.per_run[i].get(axis, [])) for i in members)

    def __call__(self, steps: int, metrics_by_run: Mapping[int, Mapping[str, float]]) -> None:
        ids = sorted(metrics_by_run)
        names = sorted({k for i in ids for k in metrics_by_run[i]})
        arrays = {k: np.array([metrics_by_run[i].get(k, math.nan) for i in ids]) for k in names}
        self.curves.add_point(ids, steps, arrays, self.rules)
        aligned = self.curves.aligned()
        axis = self.curves.axis
        for i in ids:
            self._log(self.seed_names[i], steps, {k: v[-1] for k, v in aligned[i].items()})
        for g, members in enumerate(self.members):
            while self.means_done[g] < self._common_points(members):
                t = self.means_done[g]
                keys = {k for i in members for k in aligned[i]} - {axis}
                means = {k: _finite_mean([aligned[i].get(k, [math.nan] * (t + 1))[t]
                                          for i in members]) for k in keys}  # fmt: skip
                self._log(self.mean_names[g], aligned[members[0]][axis][t], means)
                self.means_done[g] += 1
        for sink in self.sinks:
            sink.flush()
        if self.curves_csv is not None:
            self.write_curves(self.curves_csv)

    def _log(self, name: str, steps: int, values: Mapping[str, float]) -> None:
        finite = {k: float(v) for k, v in values.items()
                  if k != self.curves.axis and math.isfinite(v)}  # fmt: skip
        if finite:
            for sink in self.sinks:
                sink.scalars(name, int(steps), finite)

    def partial_record(self) -> dict[str, Any]:
        """The runs with at least one point, as much of a run record as `curves_csv` reads."""
        rows = [r for r in run_rows(self.rp, self.curves) if r["curve"]]
        return {"runs": rows, "grid": self.rp.grid, "budget": {"unit": self.curves.axis}}

    def write_curves(self, path: Path) -> None:
        """The curves so far as `rlx.record.curves_csv` writes them, replaced atomically."""
        files.write_text_atomic(path, record.curves_csv(self.partial_record()))

    def close(self) -> None:
        """Closes every sink."""
        for sink in self.sinks:
            sink.close()


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


class TensorBoard:
    """TensorBoard events: one directory (a TensorBoard 'run') per curve name under `logdir`.

    Events are written synchronously (tensorboardX's low-level `EventsWriter`, not its
    `SummaryWriter`, whose background thread may still hold the last events when the process is
    killed), into one file per process (the pid in the name: a resumed run adds a file).
    """

    def __init__(self, logdir: Path):
        self.logdir = Path(logdir)
        self._writers: dict[str, Any] = {}

    def scalars(self, name: str, steps: int, values: Mapping[str, float]) -> None:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        if name not in self._writers:
            (self.logdir / name).mkdir(parents=True, exist_ok=True)
            self._writers[name] = EventsWriter(str(self.logdir / name / "events"),
                                               f".{os.getpid()}")  # fmt: skip
        summary = Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in values.items()])
        self._writers[name].write_event(Event(wall_time=time.time(), step=steps, summary=summary))

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class Wandb:
    """One wandb run: keys ``<curve name>/<metric>``, x axis the budget unit.

    The mode is ``WANDB_MODE`` (``offline`` writes the run under ``<dir>/wandb`` for a later
    ``wandb sync``); the run id is kept in ``<dir>/wandb_id`` so a resumed run continues the same
    wandb run. `dir` is ignored when ``WANDB_DIR`` is set. Closing it tears wandb down (its
    service process) in this Python process: it is meant for a command, not a library call.
    """

    def __init__(self, project: str, rp: RunPlan, directory: Path, name: str | None = None):
        try:
            import wandb
        except ImportError:
            raise RlxError(
                "--wandb needs the wandb package: pip install 'rlx[wandb]' (or wandb)."
            ) from None
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        id_file = directory / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        files.write_text_atomic(id_file, run_id)
        self.axis = rp.algorithm.unit.value
        try:
            self.run = wandb.init(
                project=project, id=run_id, resume="allow", name=name,
                mode=os.environ.get("WANDB_MODE") or None,
                dir=None if os.environ.get("WANDB_DIR") else str(directory),
                config={**plan_spec(rp), "plan_hash": plan_hash(rp)},
            )  # fmt: skip
        except Exception as err:  # wandb's own errors (no API key, no network, ...)
            raise RlxError(
                f"wandb.init failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
                " (set WANDB_API_KEY, or WANDB_MODE=offline to log to disk)."
            ) from None
        self.run.define_metric(self.axis)
        self.run.define_metric("*", step_metric=self.axis)

    def scalars(self, name: str, steps: int, values: Mapping[str, float]) -> None:
        self.run.log({self.axis: steps, **{f"{name}/{k}": v for k, v in values.items()}})

    def flush(self) -> None:
        """wandb sends (or writes) in the background."""

    def close(self) -> None:
        """Finishes the run and waits for wandb's service process to write (or send) everything
        and exit, so the offline run directory is complete before it is copied into the record."""
        import wandb

        self.run.finish()
        wandb.teardown()
