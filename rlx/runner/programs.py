"""The compiled programs of a slice of runs: init, a chunk of updates, evaluation.

Each is `jit(vmap(...))` over the run axis, sharded over the devices' ``runs`` mesh axis, and
compiled ahead of time: a compiled executable accepts only its own input signature, so a state
whose dtypes drifted (weak types, int/float) is refused with an error instead of being silently
recompiled. Assets are an argument of every program, replicated over the devices and not
vmapped (``in_axes=None``): one copy however many runs a slice holds.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rlx import envs
from rlx.evaluation import evaluate
from rlx.metrics import aggregate
from rlx.runner.plan import RunPlan


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a batch lives: the devices, the run-axis sharding and the replicated one."""

    devices: tuple[jax.Device, ...]
    runs: NamedSharding
    replicated: NamedSharding

    @classmethod
    def over(cls, devices: Sequence[jax.Device]) -> Layout:
        """The run axis split over `devices` (a 1-D mesh named ``runs``)."""
        mesh = Mesh(np.array(list(devices)), ("runs",))
        return cls(tuple(devices), NamedSharding(mesh, PartitionSpec("runs")),
                   NamedSharding(mesh, PartitionSpec()))  # fmt: skip


@dataclasses.dataclass
class Programs:
    """The three compiled programs of a slice, and their compile seconds."""

    init: Callable
    chunk: Callable
    evaluate: Callable
    compile_s: float
    state_spec: Any


def step_functions(rp: RunPlan, env) -> tuple[Callable, Callable, Callable]:
    """The per-run pure functions (init, chunk, evaluation) before vmap and jit.

    ``init_one(key, config, assets)``, ``chunk_one(state, assets) -> (state, chunk metrics)``
    (a `lax.scan` of ``updates_per_chunk`` updates, metrics summarised by the algorithm's
    rules) and ``eval_one(state, key, index, assets)`` (`rlx.evaluation.evaluate` plus the
    algorithm's ``diagnostics``).
    """
    algo = rp.algorithm
    ep_len = getattr(rp.base_config, "episode_length", 0) or envs.episode_length(env)
    rules = algo.metric_rules(env)

    def init_one(key, config, assets):
        return algo.init(jax.random.split(key)[0], env, config, assets)

    def chunk_one(state, assets):
        def body(s, _):
            return algo.update(env, s, assets)

        state, metrics = jax.lax.scan(body, state, None, length=rp.updates_per_chunk)
        return state, aggregate(metrics, rules)

    def eval_one(state, key, index, assets):
        act = algo.policy(state, env)
        eval_key = jax.random.fold_in(jax.random.split(key)[1], index)
        out = evaluate(env, act, eval_key, rp.eval_episodes, ep_len)
        if algo.diagnostics is not None:
            out.update(algo.diagnostics(state, env, assets, jax.random.fold_in(eval_key, 1)))
        return out

    return init_one, chunk_one, eval_one


def over_runs(fn: Callable, in_axes: tuple[int | None, ...], runs: int) -> Callable:
    """`fn` mapped over the leading run axis of the arguments whose `in_axes` entry is 0.

    With several runs this is ``jax.vmap``. A batch of one run calls `fn` unbatched on the
    squeezed arguments and adds the axis back to the outputs: vmap over an axis of size 1
    still batches every operation (dots become batched dots, MJX's solver loops gain selects
    over their carry), which cost 15-25% of an update of PPO on ant (MJX, 128 envs) on a
    2-core CPU. Both compute the same functions, up to float rounding.
    """
    if runs > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def single(*args):
        args = [a if ax is None else jax.tree.map(lambda x: x[0], a)
                for a, ax in zip(args, in_axes, strict=True)]  # fmt: skip
        return jax.tree.map(lambda x: jnp.expand_dims(x, 0), fn(*args))

    return single


def donated_args() -> tuple[int, ...]:
    """Donate the chunk's input state on accelerators (halves peak memory); not on the CPU,
    where donation saves little and an executable waiting on donated buffers was seen to hang
    (jax 0.10.2, 2 busy cores)."""
    return () if jax.default_backend() == "cpu" else (0,)


def build(rp: RunPlan, env, keys, configs, assets, layout: Layout) -> Programs:
    """Lowers and compiles init, one chunk and evaluation for a batch shaped like `keys`."""
    init_one, chunk_one, eval_one = step_functions(rp, env)
    shard = layout.runs
    runs = keys.shape[0]
    start = time.perf_counter()
    init_j = jax.jit(over_runs(init_one, (0, 0, None), runs), out_shardings=shard)
    init_c = init_j.lower(keys, configs, assets).compile()
    state_shape = jax.eval_shape(init_j, keys, configs, assets)
    state_spec = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=shard), state_shape
    )
    chunk_c = (
        jax.jit(over_runs(chunk_one, (0, None), runs), out_shardings=shard,
                donate_argnums=donated_args())
        .lower(state_spec, assets)
        .compile()
    )  # fmt: skip
    index = jax.ShapeDtypeStruct((), jnp.int32)
    eval_c = (
        jax.jit(over_runs(eval_one, (0, 0, None, None), runs), out_shardings=shard)
        .lower(state_spec, keys, index, assets)
        .compile()
    )
    if (hazard := cpu_pool_hazard(layout.devices, chunk_c.as_text)) is not None:
        warnings.warn(hazard, stacklevel=2)
    return Programs(init_c, chunk_c, eval_c, time.perf_counter() - start, state_spec)


def cpu_pool_hazard(devices: Sequence[jax.Device], hlo_text: Callable[[], str]) -> str | None:
    """A warning where several CPU devices of this process run a program that calls jax's
    LAPACK kernels (MJX's constraint solver factorises with Cholesky), else None.

    Those kernels run on the thread pool that executes the devices' programs and wait there for
    pool threads of their own: with as many devices busy as the pool has threads (one per core),
    every thread can end up waiting and the program hangs (seen with jax 0.10.2: MJX ant, 2
    forced CPU devices on 2 cores). `hlo_text` is only called when several CPU devices are local.
    """
    local = _local(devices)
    if len(local) < 2 or local[0].platform != "cpu" or "lapack" not in hlo_text():
        return None
    return (
        f"{len(local)} CPU devices in one process run a program that calls LAPACK kernels, "
        "which can hang on the CPU's shared thread pool; run one process per device instead "
        "(--distributed, or XLA_FLAGS without --xla_force_host_platform_device_count)."
    )


def device_memory_limit(devices: Sequence[jax.Device]) -> int | None:
    """Bytes one device can hold (None for devices that report no limit, such as CPUs); read
    from one of this process's devices (others' cannot report in a multi-process run)."""
    return (_local(devices)[0].memory_stats() or {}).get("bytes_limit")


def _local(devices: Sequence[jax.Device]) -> list[jax.Device]:
    """This process's devices among `devices` (all of them outside a multi-process run)."""
    return [d for d in devices if d.process_index == jax.process_index()]


def chunk_bytes(programs: Programs) -> int | None:
    """The chunk program's memory estimate per device: arguments + outputs + temporaries."""
    analysis = programs.chunk.memory_analysis()
    if analysis is None:
        return None
    return sum(
        getattr(analysis, f, 0) or 0
        for f in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    )


def fits_in_memory(programs: Programs, devices: Sequence[jax.Device]) -> bool:
    """False when the chunk program's estimate exceeds 90% of a device's memory limit."""
    limit = device_memory_limit(devices)
    need = chunk_bytes(programs)
    return not limit or need is None or need <= 0.9 * limit


def to_global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A host array (identical on every process) as a global array laid out by `sharding`."""
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, sharding, lambda idx: array[idx])


def fetch(tree: Any) -> Any:
    """Device arrays to host numpy, gathering across processes on a multi-host run."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, jax.device_get(tree))
