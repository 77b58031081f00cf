"""Action distributions as pure functions of their parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_LOG_2PI = float(np.log(2.0 * np.pi))


def gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """a = mean + exp(log_std) * eps, eps ~ N(0, I)."""
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log N(x; mean, diag(exp(2 log_std))), summed over the last (action) axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """H = sum_i (log_std_i + 0.5 * log(2 pi e)), over the last axis."""
    return jnp.sum(log_std + 0.5 * (_LOG_2PI + 1.0), axis=-1)
