"""Checkpoints of a batch of runs between chunks (orbax), so an interrupted run resumes exactly.

A checkpoint holds the full batched training state (params, optimiser state, normaliser, env
state, replay buffer or dataset cursor, RNG, step counters: whatever the algorithm's state
pytree holds) plus a JSON ``meta`` dict (curves so far, timing, position, configuration hash).
Orbax writes each checkpoint into a temporary directory (``<step>.orbax-checkpoint-tmp``) and
renames it when complete, so a process killed at any moment (``kill -9`` included) leaves the
previous checkpoint intact; the next save of that step removes the leftover directory.

Test hook: ``RLX_TEST_KILL_IN_CHECKPOINT_WRITE=N`` SIGKILLs the process while checkpoint ``N`` is
being written: after orbax has written every item into the temporary directory and before it
commits anything (no rename), the most complete state a checkpoint can be in without counting.
"""

from __future__ import annotations

import logging
import math
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

for _name in ("absl", "orbax"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class RunCheckpointer:
    """Keeps the latest checkpoint of a batch of runs under `directory`."""

    def __init__(self, directory: Path):
        self.directory = Path(directory).resolve()
        self._writing: int | None = None  # the step being saved, for the test hook
        state_handler = _StateHandler(before_commit=self._test_kill_mid_write)
        registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
        registry.add("state", ocp.args.StandardSave, state_handler)
        registry.add("state", ocp.args.StandardRestore, state_handler)
        meta_handler = ocp.JsonCheckpointHandler()
        registry.add("meta", ocp.args.JsonSave, meta_handler)
        registry.add("meta", ocp.args.JsonRestore, meta_handler)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False),
            handler_registry=registry,
        )

    def latest_meta(self) -> dict[str, Any] | None:
        """The meta dict of the latest complete checkpoint, or None."""
        step = self._manager.latest_step()
        if step is None:
            return None
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored["meta"])

    def restore_state(self, abstract_state: Any) -> Any:
        """The latest checkpoint's state, laid out (shapes, dtypes, shardings) as `abstract_state`."""
        step = self._manager.latest_step()
        specs, treedef = jax.tree.flatten(abstract_state)
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(_stored(specs)))
        )["state"]
        leaves = [
            restored[str(i)]
            if str(i) in restored
            else jax.device_put(jnp.zeros(spec.shape, spec.dtype), spec.sharding)
            for i, spec in enumerate(specs)
        ]
        return jax.tree.unflatten(treedef, leaves)

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Writes checkpoint `step` (blocking until it is complete on disk)."""
        self._writing = step
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_stored(jax.tree.leaves(state))),
                meta=ocp.args.JsonSave(meta),
            ),
            force=True,
        )
        self._manager.wait_until_finished()
        self._writing = None

    def _test_kill_mid_write(self) -> None:
        """The ``RLX_TEST_KILL_IN_CHECKPOINT_WRITE=N`` hook: SIGKILL while step N is written."""
        target = os.environ.get("RLX_TEST_KILL_IN_CHECKPOINT_WRITE")
        if target is not None and self._writing is not None and int(target) == self._writing:
            os.kill(os.getpid(), signal.SIGKILL)

    def close(self) -> None:
        """Releases orbax's resources."""
        self._manager.close()


class _StateHandler(ocp.StandardCheckpointHandler):
    """orbax's handler of the state item, calling `before_commit()` once every item of the step
    has been written into the step's temporary directory, before orbax finalizes (renames)
    anything: the seam of the kill-during-write test hook."""

    def __init__(self, before_commit: Callable[[], None]):
        super().__init__()
        self._before_commit = before_commit

    def finalize(self, directory: Any) -> None:
        self._before_commit()
        super().finalize(directory)


def _stored(leaves: list[Any]) -> dict[str, Any]:
    """The leaves orbax writes, keyed by position: every one but the empty arrays (orbax
    refuses zero-size arrays, e.g. an MJX state's actuator activations of a model with none;
    they are rebuilt as zeros on restore)."""
    return {str(i): x for i, x in enumerate(leaves) if math.prod(x.shape) > 0}
