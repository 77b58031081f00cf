"""A replay buffer that lives on the device inside the training state: a fixed-size ring.

The buffer is a plain pytree (arrays of shape ``[capacity, ...]`` plus two int32 counters), so
it is vmapped with the runs, checkpointed with the rest of the state and never leaves the
compiled program. Writes with a mask stay fixed-shape: the kept rows are packed by a cumulative
sum and the others are scattered out of bounds, where XLA drops them.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Buffer:
    """Ring buffer: ``data`` leaves are ``[capacity, ...]``; ``insert`` is the next write row."""

    data: Any
    insert: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        """Rows the buffer holds (static)."""
        return jax.tree.leaves(self.data)[0].shape[0]


def init(example: Any, capacity: int) -> Buffer:
    """An empty buffer for items shaped like `example` (one transition, no leading axis)."""
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example
    )
    return Buffer(data=data, insert=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(buffer: Buffer, items: Any, mask: jax.Array | None = None) -> Buffer:
    """Appends the rows of `items` (leaves ``[n, ...]``) where `mask` (``[n]``, bool) is true.

    Kept row j goes to ``(insert + #kept rows before j) mod capacity``; the oldest rows are
    overwritten once the buffer is full. With n > capacity only the last kept rows survive.
    """
    n = jax.tree.leaves(items)[0].shape[0]
    chex.assert_tree_shape_prefix(items, (n,))
    capacity = buffer.capacity
    keep = jnp.ones((n,), bool) if mask is None else mask.astype(bool)
    chex.assert_shape(keep, (n,))
    offset = jnp.cumsum(keep.astype(jnp.int32)) - 1
    count = keep.sum(dtype=jnp.int32)
    # Rows that would be overwritten again by later rows of this same write are dropped too,
    # so the result does not depend on the scatter order of duplicate indices.
    survives = keep & (offset >= count - capacity)
    rows = jnp.where(survives, (buffer.insert + offset) % capacity, capacity)
    data = jax.tree.map(
        lambda d, x: d.at[rows].set(x.astype(d.dtype), mode="drop"), buffer.data, items
    )
    return Buffer(
        data=data,
        insert=(buffer.insert + count) % capacity,
        size=jnp.minimum(buffer.size + count, capacity),
    )


def sample(buffer: Buffer, key: jax.Array, batch_size: int) -> Any:
    """`batch_size` rows drawn uniformly with replacement from the filled part of the buffer.

    On an empty buffer it returns row 0 (zeros); callers mask updates until the buffer is warm.
    """
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[idx], buffer.data)
