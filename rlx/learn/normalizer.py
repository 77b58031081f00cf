"""Running observation normalisation (parallel Welford mean/variance), as a pure pytree."""

from __future__ import annotations

import chex
import flax.struct
import jax
import jax.numpy as jnp

MIN_STD = 1e-2
"""The floor on the standard deviation `normalize` divides by (applied everywhere: PPO's running
statistics, bc's and the offline learners' dataset statistics, HABC's heads).

Without it a near-constant feature is divided by its tiny spread: the MJX level-1 SFT
demonstrations hold the box upright with a std of 7e-5, so any tilt over about 2 degrees
pinned the policy's input at the clip (10). With the floor a deviation d in such a feature
reads at most d / 0.01 (0.01 reads 1). Every feature whose ``sqrt(var + 1e-8)`` is at least
0.01 is normalised bit for bit as before (the floor is a ``max`` on the old divisor), and a
feature that is exactly constant still reads 0 at its mean, so results made under the old rule
change only where a feature's spread was under 0.01 in the units it is observed in; the floor
is an absolute scale, so a task whose meaningful features vary by well under 0.01 (rescale
them, or pass a smaller `min_std`) is the case it does not fit."""


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


def std(stats: RunningStats, min_std: float = MIN_STD) -> jax.Array:
    """The standard deviation `normalize` divides by: ``max(sqrt(var + 1e-8), min_std)`` per
    feature, with the sample variance ``M2 / (n - 1)`` (1 before two observations)."""
    var = jnp.where(stats.count > 1, stats.m2 / jnp.maximum(stats.count - 1, 1.0), 1.0)
    return jnp.maximum(jnp.sqrt(var + 1e-8), min_std)


def normalize(
    stats: RunningStats, obs: jax.Array, clip: float = 10.0, min_std: float = MIN_STD
) -> jax.Array:
    """(obs - mean) / std, clipped to [-clip, clip], with std floored at `min_std` (`std`);
    identity-like before any update."""
    chex.assert_axis_dimension(obs, -1, stats.mean.shape[-1])
    return jnp.clip((obs - stats.mean) / std(stats, min_std), -clip, clip)


def as_dict(stats: RunningStats) -> dict[str, jax.Array]:
    """The statistics as a plain dict ``{count, mean, m2}`` (the form a policy's params hold)."""
    return {"count": stats.count, "mean": stats.mean, "m2": stats.m2}


def from_dict(params: dict[str, jax.Array]) -> RunningStats:
    """`RunningStats` from `as_dict`'s form."""
    return RunningStats(count=params["count"], mean=params["mean"], m2=params["m2"])
