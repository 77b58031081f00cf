"""Training a plan into a directory: the one path of `rlx train`, every `rlx sweep` cell and
``rlx.train(..., out=DIR)``.

`train_to_dir(rp, out)` works in ``OUT.partial/`` while it runs (a checkpoint after every chunk,
``curves.csv`` rewritten after every evaluation point, TensorBoard events and a wandb run when
asked for), exports policies as slices end, then writes the run record to `out` atomically,
removes the partial directory and prints a summary. Run again after an interrupt (or a
``kill -9``), it resumes from the last checkpoint when `resume_decision` allows it::

    train_to_dir -> check_train_to_dir       # every bad input, before anything is written
                 -> _open_partial            # clear a discarded run, make OUT.partial
                 -> live_logging             # partial curves.csv, TensorBoard, wandb
                 -> runner.run               # checkpoints in OUT.partial/checkpoints
                 -> record.write_run         # OUT, with the live logs copied in

With ``--distributed`` every process trains its shard and only the primary writes (`rlx
.distributed`); the processes wait for each other where the partial directory changes.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlx import distributed, record
from rlx import logging as live
from rlx.errors import RlxError
from rlx.provenance import code_identity, provenance
from rlx.runner.execute import Callback, SliceEnd, run
from rlx.runner.plan import RunPlan, plan_hash
from rlx.runner.store import latest_meta, resume_decision

DISCARD_HINT = "pass --overwrite to discard it (rlx sweep: remove it), or choose another --out"
LIVE_LOGS = ("tensorboard", "wandb")
"""The live-log directories of ``OUT.partial`` copied into the run directory at the end."""


class Interrupted(KeyboardInterrupt):
    """An interrupt (Ctrl-C) of `train_to_dir`: nothing is lost, `partial` holds the last
    checkpoint and the same call resumes from it."""

    def __init__(self, partial: Path):
        super().__init__(str(partial))
        self.partial = partial


def partial_dir(out: str | Path) -> Path:
    """Where an unfinished run into `out` keeps its checkpoints, partial curves.csv and live
    logs: ``OUT.partial`` (removed once OUT is written)."""
    out = Path(out).resolve()
    return out.with_name(out.name + ".partial")


def check_wandb(project: str | None) -> None:
    """Refuses an empty wandb project name, and a project when wandb is not installed."""
    if project is None:
        return
    if not project.strip():
        raise RlxError("--wandb needs a project name.")
    if importlib.util.find_spec("wandb") is None:
        raise RlxError("--wandb needs the wandb package: pip install 'rlx[wandb]' (or wandb).")


def check_export(
    rp: RunPlan, out: Path, export: str | Path | None, export_run: int | None, replace: bool
) -> None:
    """Refuses bad `export` / `export_run` values: a run out of range, `export` inside `out`,
    and an existing non-empty `export` unless `replace`."""
    if export is None:
        if export_run is not None:
            raise RlxError("--export-run needs --export DIR.")
        return
    n = len(rp.runs)
    if export_run is not None and not 0 <= export_run < n:
        raise RlxError(
            f"--export-run {export_run} is out of range: this batch has runs 0..{n - 1}."
        )
    inside, out = Path(export).resolve(), Path(out).resolve()
    if inside == out or out in inside.parents:
        raise RlxError(
            "--export must not be inside --out (the run directory is replaced at the end)."
        )
    record.check_out_dir(Path(export), replace)


def resume_point(
    rp: RunPlan,
    out: str | Path,
    started: Mapping[str, Any],
    *,
    overwrite: bool = False,
    accept_revision_change: bool = False,
) -> dict[str, Any] | None:
    """The checkpoint meta in ``OUT.partial`` that a run of `rp` by the code of `started`
    resumes from, or None for a fresh start (`rlx.runner.store.resume_decision`; `overwrite`
    discards a checkpoint that may not be resumed)."""
    partial = partial_dir(out)
    return resume_decision(
        latest_meta(partial / "checkpoints"), partial, plan_hash(rp), code_identity(dict(started)),
        accept_revision_change=accept_revision_change, discard=overwrite, discard_hint=DISCARD_HINT,
    )  # fmt: skip


def check_train_to_dir(
    rp: RunPlan,
    out: str | Path,
    started: Mapping[str, Any],
    *,
    overwrite: bool = False,
    accept_revision_change: bool = False,
    wandb: str | None = None,
    export: str | Path | None = None,
    export_run: int | None = None,
) -> dict[str, Any] | None:
    """Every bad-input check of `train_to_dir`, done before anything is written: an existing
    `out` (unless `overwrite`), the wandb project, a checkpoint that may not be resumed, the
    export options. Returns the checkpoint meta the run resumes from (None: a fresh start)."""
    out = Path(out)
    record.check_out_dir(out, overwrite)
    check_wandb(wandb)
    meta = resume_point(rp, out, started, overwrite=overwrite,
                        accept_revision_change=accept_revision_change)  # fmt: skip
    # a resumed run may already have exported the policies of its finished slices
    check_export(rp, out, export, export_run, replace=overwrite or meta is not None)
    return meta


def policy_exporter(
    rp: RunPlan, export: str | Path, started: Mapping[str, Any], export_run: int | None = None
) -> SliceEnd:
    """``on_slice_end`` exporting the slice's runs (all, or `export_run` only) to
    ``EXPORT/run-<i>/`` (`rlx.policy.export_runs`) as each slice ends."""
    from rlx import policy

    export = Path(export)

    def wanted(i: int) -> bool:
        return export_run is None or i == export_run

    def export_slice(ids: list[int], state: Any) -> None:
        paths = policy.export_runs(rp, ids, state, dict(started),
                                   lambda i: export / f"run-{i}", wanted)  # fmt: skip
        if paths:
            names = ", ".join(p.name for p in paths)
            print(f"exported {'policy' if len(paths) == 1 else 'policies'} {names} to {export}")

    return export_slice


def live_logging(
    rp: RunPlan,
    partial: Path,
    meta: Mapping[str, Any] | None,
    *,
    tensorboard: bool = False,
    wandb: str | None = None,
    name: str | None = None,
) -> live.Live:
    """The runner's callback: ``PARTIAL/curves.csv``, and TensorBoard events and a wandb run
    (named `name`) under `partial` when asked for; a resumed run (`meta`) does not log again
    the points its checkpoint holds."""
    sinks: list[live.Sink] = []
    if tensorboard:
        sinks.append(live.TensorBoard(partial / "tensorboard"))
    if wandb is not None:
        sinks.append(live.Wandb(wandb, rp, partial, name=name))
    resumed = meta["curves"] if meta else None
    return live.Live(rp, sinks, curves_csv=partial / "curves.csv", resumed=resumed)


def _chain(first: Callable[..., None], then: Callable[..., None] | None) -> Callable[..., None]:
    """A callback calling `first`, then `then` (when given), with the same arguments."""
    if then is None:
        return first

    def both(*args: Any) -> None:
        first(*args)
        then(*args)

    return both


def _open_partial(partial: Path, meta: Mapping[str, Any] | None, rp: RunPlan) -> bool:
    """Clears the leftovers of a discarded or unsaved run (primary), or says where the run
    resumes; then makes `partial` (every process). Returns whether it was made now."""
    from rlx.runner.describe import position_text

    primary = distributed.is_primary()
    if meta is None:
        if primary:
            shutil.rmtree(partial, ignore_errors=True)
    elif primary:
        print(f"resuming from the checkpoint in {partial} ({position_text(rp, meta)})")
    distributed.barrier("partial directory cleared")
    fresh = not partial.exists()
    partial.mkdir(parents=True, exist_ok=True)
    return fresh


def train_to_dir(
    rp: RunPlan,
    out: str | Path,
    *,
    overwrite: bool = False,
    accept_revision_change: bool = False,
    runs_per_slice: int | None = None,
    progress: bool = True,
    devices: Sequence[Any] | None = None,
    tensorboard: bool = False,
    wandb: str | None = None,
    export: str | Path | None = None,
    export_run: int | None = None,
    started: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    on_slice_end: SliceEnd | None = None,
) -> dict[str, Any]:
    """Trains plan `rp` into the run directory `out` and returns its run record.

    While it runs, ``OUT.partial`` holds a checkpoint after every chunk, the partial
    ``curves.csv``, and the TensorBoard events (`tensorboard`) and wandb run (`wandb`: the
    project) that are copied into `out` at the end. A checkpoint there is resumed
    (`resume_point`); `overwrite` replaces an existing `out` and `export` and discards a
    checkpoint of another plan or code (`accept_revision_change` resumes the latter). With
    `export`, the policies of every run (or run `export_run`) are written to
    ``EXPORT/run-<i>/`` as their slice ends. `started` is the provenance read when the run (or
    the sweep around it) started (read now if not given); `callback` and `on_slice_end` are
    called after the live logs and the export, as `rlx.runner.run` calls them. An interrupt
    raises `Interrupted`: ``OUT.partial`` stays and the same call resumes from it.
    """
    out = Path(out)
    started = dict(started) if started is not None else provenance()
    meta = check_train_to_dir(
        rp, out, started, overwrite=overwrite, accept_revision_change=accept_revision_change,
        wandb=wandb, export=export, export_run=export_run,
    )  # fmt: skip
    partial = partial_dir(out)
    fresh = _open_partial(partial, meta, rp)
    primary = distributed.is_primary()
    try:
        logger = (live_logging(rp, partial, meta, tensorboard=tensorboard, wandb=wandb,
                               name=out.name) if primary else distributed.NO_LOGGING)  # fmt: skip
    except RlxError:
        if fresh:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    exporter = policy_exporter(rp, export, started, export_run) if export is not None else None
    try:
        rec = run(
            rp, runs_per_slice=runs_per_slice, progress=progress and primary, devices=devices,
            checkpoint_dir=partial / "checkpoints", callback=_chain(logger, callback),
            started=started, accept_revision_change=accept_revision_change,
            on_slice_end=_chain(exporter, on_slice_end) if exporter else on_slice_end,
        )  # fmt: skip
    except KeyboardInterrupt:
        raise Interrupted(partial) from None
    finally:
        logger.close()
    distributed.barrier("training done")
    if primary:
        copy_in = {name: partial / name for name in LIVE_LOGS}
        record.write_run(out, rec, overwrite=overwrite, copy_in=copy_in)
        shutil.rmtree(partial, ignore_errors=True)
        print(record.console_summary(rec, out))
    return rec
