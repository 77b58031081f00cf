"""Multi-process runs (``--distributed``): which process writes, and where processes wait.

One program spans every process's devices (`jax.distributed`); every process runs the same
commands on its own shard of the run axis, and only process 0 (the *primary*) writes run
records, tables, live logs and the progress bar. Checkpoints are orbax's: every process writes
its shards of the state and the primary the metadata. In a single-process run every function
here is a no-op.
"""

from __future__ import annotations

import jax
from jax.experimental import multihost_utils

from rlx.errors import RlxError


def start(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """Starts JAX's distributed runtime (`jax.distributed.initialize`) with the settings given,
    the rest read from the cluster environment (SLURM, Open MPI, Kubernetes; the coordinator
    also from JAX_COORDINATOR_ADDRESS). Call it before anything touches JAX's backends (building
    a Brax/MJX env or an asset does). RlxError when the settings are missing or refused."""
    given = {"coordinator_address": coordinator, "num_processes": num_processes,
             "process_id": process_id}  # fmt: skip
    try:
        jax.distributed.initialize(**{k: v for k, v in given.items() if v is not None})
    except (ValueError, RuntimeError) as err:
        raise RlxError(
            f"--distributed could not start JAX's distributed runtime: {err}. Run under a "
            "cluster scheduler (SLURM, Open MPI) or give --coordinator HOST:PORT, "
            "--num-processes N and --process-id I."
        ) from None


def is_primary() -> bool:
    """True on the process that writes (process 0; the only one without --distributed)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Waits until every process has reached the barrier `name` (no-op with one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


class _NoLogging:
    """The live-logging callback of a non-primary process: does nothing."""

    def __call__(self, steps: int, metrics: dict[int, dict[str, float]]) -> None:
        pass

    def close(self) -> None:
        pass


NO_LOGGING = _NoLogging()
