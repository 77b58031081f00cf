"""Checkpointed execution state: the batched training state (orbax) plus where the batch is
(slice, chunk, slice size), its curves and timing so far, and the code that made it.

A resume continues only the same plan (`plan_hash`) made by the same code (revision and diff
hash); a resume across code revisions is refused unless explicitly accepted, and is then
written into the record. `resume_decision` is that rule, the one place it is written (the
runner's `Store.resume` and `rlx.runner.session` both ask it).
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlx.errors import RlxError
from rlx.provenance import code_identity
from rlx.runner.checkpoint import RunCheckpointer


@dataclasses.dataclass
class Timing:
    """Seconds spent compiling, training (chunks) and evaluating, and wall-clock in all."""

    compile_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    wall_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a checkpoint was taken: slice `slice` (of `slice_size` runs), after chunk `chunk`."""

    slice: int
    chunk: int
    slice_size: int


@dataclasses.dataclass
class Resume:
    """What a checkpoint holds besides the state."""

    position: Position
    curves: dict[str, Any]
    timing: Timing
    code: str


class Store:
    """The checkpoints of one batch under `directory` (the latest is kept)."""

    def __init__(self, directory: Path, digest: str, code: str):
        self.directory = Path(directory)
        self.digest = digest
        self.code = code
        self._ckpt = RunCheckpointer(self.directory)

    def resume(self, accept_revision_change: bool) -> Resume | None:
        """The latest checkpoint's position, curves and timing, or None; raises RlxError for a
        checkpoint it may not resume (`resume_decision`)."""
        meta = resume_decision(
            self._ckpt.latest_meta(), self.directory, self.digest, self.code,
            accept_revision_change=accept_revision_change,
        )  # fmt: skip
        if meta is None:
            return None
        return Resume(Position(**meta["position"]), meta["curves"], Timing(**meta["timing"]),
                      meta["code"])  # fmt: skip

    def restore(self, state_spec: Any) -> Any:
        """The latest checkpoint's batched state, laid out as `state_spec`."""
        return self._ckpt.restore_state(state_spec)

    def save(
        self, position: Position, state: Any, curves: dict, timing: Timing, evals: int
    ) -> None:
        """Writes the checkpoint at `position` (blocking until complete on disk)."""
        meta = {
            "hash": self.digest, "code": self.code, "position": dataclasses.asdict(position),
            "curves": curves, "timing": dataclasses.asdict(timing),
        }  # fmt: skip
        step = position.slice * (evals + 1) + position.chunk
        self._ckpt.save(step, state, meta)
        _test_kill_hook(step)

    def close(self) -> None:
        """Releases orbax's resources."""
        self._ckpt.close()


DISCARD_HINT = "remove it to start afresh, or write elsewhere"


def resume_decision(
    meta: Mapping[str, Any] | None,
    where: Path,
    digest: str,
    code: str,
    *,
    accept_revision_change: bool = False,
    discard: bool = False,
    discard_hint: str = DISCARD_HINT,
) -> dict[str, Any] | None:
    """The one resume rule: the checkpoint `meta` (`latest_meta`) to resume from, or None to
    start afresh (no checkpoint, or `discard` of one that may not be resumed). A checkpoint may
    be resumed when it names plan `digest` and code `code` (another code only with
    `accept_revision_change`); otherwise RlxError naming `where` and `discard_hint`."""
    if meta is None:
        return None
    if "code" not in meta or "position" not in meta:
        problem = "a checkpoint written by an older rlx (it names no code revision)"
        hint = discard_hint
    elif meta["hash"] != digest:
        problem = f"an unfinished run of a different configuration (plan {meta['hash']}, this is {digest})"
        hint = discard_hint
    elif meta["code"] != code and not accept_revision_change:
        problem = f"an unfinished run of code {meta['code']} (this is {code})"
        hint = ("pass --accept-revision-change to resume it anyway (the record says so), or "
                + discard_hint)  # fmt: skip
    else:
        return dict(meta)
    if discard:
        return None
    raise RlxError(f"{str(where)!r} holds {problem}; {hint}.")


def latest_meta(directory: Path) -> dict[str, Any] | None:
    """The meta dict (plan hash, code, position, curves, timing) of the latest checkpoint under
    `directory`, or None; reads without creating anything."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    ckpt = RunCheckpointer(directory)
    try:
        return ckpt.latest_meta()
    finally:
        ckpt.close()


def store_for(directory: Path | None, digest: str, started: dict[str, Any]) -> Store | None:
    """A store under `directory` (None: no checkpoints), for code identified by `started`."""
    return None if directory is None else Store(directory, digest, code_identity(started))


def _test_kill_hook(step: int) -> None:
    """For the resume tests: ``RLX_TEST_KILL_AT_CHECKPOINT=N`` SIGKILLs this process right after
    checkpoint N is written, as an operator's ``kill -9`` would."""
    target = os.environ.get("RLX_TEST_KILL_AT_CHECKPOINT")
    if target is not None and int(target) == step:
        os.kill(os.getpid(), signal.SIGKILL)
