"""Running observation normalisation (parallel Welford mean/variance), as a pure pytree."""

from __future__ import annotations

import chex
import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class RunningStats:
    """Count, mean and summed squared deviations (M2) of every observation seen so far."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array


def init(size: int) -> RunningStats:
    """Empty statistics for observations of shape (size,)."""
    return RunningStats(
        count=jnp.zeros((), jnp.float32),
        mean=jnp.zeros((size,), jnp.float32),
        m2=jnp.zeros((size,), jnp.float32),
    )


def update(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Merges a batch [..., size] into the statistics (Chan et al. parallel update)::

    n = n_a + n_b;  mean = mean_a + d * n_b / n;  M2 = M2_a + M2_b + d^2 n_a n_b / n,  d = mean_b - mean_a
    """
    batch = batch.reshape(-1, stats.mean.shape[-1]).astype(jnp.float32)
    n_b = jnp.float32(batch.shape[0])
    mean_b = batch.mean(axis=0)
    m2_b = ((batch - mean_b) ** 2).sum(axis=0)
    n = stats.count + n_b
    delta = mean_b - stats.mean
    return RunningStats(
        count=n,
        mean=stats.mean + delta * n_b / n,
        m2=stats.m2 + m2_b + delta**2 * stats.count * n_b / n,
    )


def normalize(stats: RunningStats, obs: jax.Array, clip: float = 10.0) -> jax.Array:
    """(obs - mean) / std, clipped to [-clip, clip]; identity-like before any update."""
    chex.assert_axis_dimension(obs, -1, stats.mean.shape[-1])
    var = jnp.where(stats.count > 1, stats.m2 / jnp.maximum(stats.count - 1, 1.0), 1.0)
    return jnp.clip((obs - stats.mean) / jnp.sqrt(var + 1e-8), -clip, clip)


def as_dict(stats: RunningStats) -> dict[str, jax.Array]:
    """The statistics as a plain dict ``{count, mean, m2}`` (the form a policy's params hold)."""
    return {"count": stats.count, "mean": stats.mean, "m2": stats.m2}


def from_dict(params: dict[str, jax.Array]) -> RunningStats:
    """`RunningStats` from `as_dict`'s form."""
    return RunningStats(count=params["count"], mean=params["mean"], m2=params["m2"])
