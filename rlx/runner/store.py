"""Checkpointed execution state: the batched training state (orbax) plus where the batch is
(slice, chunk, slice size), its curves and timing so far, and the code that made it.

A resume continues only the same plan (`plan_hash`) made by the same code (revision and diff
hash); a resume across code revisions is refused unless explicitly accepted, and is then
written into the record.
"""

from __future__ import annotations

import dataclasses
import os
import signal
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
        checkpoint of another plan, or of other code unless `accept_revision_change`."""
        meta = self._ckpt.latest_meta()
        if meta is None:
            return None
        if "code" not in meta or "position" not in meta:
            raise RlxError(
                f"checkpoint in {str(self.directory)!r} was written by an older rlx (it names no "
                "code revision); remove it to start afresh."
            )
        if meta["hash"] != self.digest:
            raise RlxError(
                f"checkpoint in {str(self.directory)!r} belongs to a different configuration "
                f"(hash {meta['hash']} != {self.digest}); remove it or write elsewhere."
            )
        if meta["code"] != self.code and not accept_revision_change:
            raise RlxError(
                f"checkpoint in {str(self.directory)!r} was made by code {meta['code']}, this is "
                f"{self.code}; resuming would mix two revisions in one run. Pass "
                "--accept-revision-change to resume anyway (the record says so), or remove it."
            )
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


def store_for(directory: Path | None, digest: str, started: dict[str, Any]) -> Store | None:
    """A store under `directory` (None: no checkpoints), for code identified by `started`."""
    return None if directory is None else Store(directory, digest, code_identity(started))


def _test_kill_hook(step: int) -> None:
    """For the resume tests: ``RLX_TEST_KILL_AT_CHECKPOINT=N`` SIGKILLs this process right after
    checkpoint N is written, as an operator's ``kill -9`` would."""
    target = os.environ.get("RLX_TEST_KILL_AT_CHECKPOINT")
    if target is not None and int(target) == step:
        os.kill(os.getpid(), signal.SIGKILL)
