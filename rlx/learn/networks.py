"""Flax networks shared by every algorithm."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "silu": nn.silu, "elu": nn.elu}


def orthogonal(scale: float = 1.0) -> nn.initializers.Initializer:
    """Orthogonal initialiser (Saxe et al. 2014) without LAPACK: a Haar-random orthonormal
    matrix from a Gaussian one by Gram-Schmidt (applied twice for numerical stability).

    Same distribution as `flax.linen.initializers.orthogonal` (QR of a Gaussian matrix with
    the signs of R's diagonal made positive, which is what Gram-Schmidt yields). It avoids
    jaxlib's batched CPU QR kernel, whose parallel batch map was seen to deadlock XLA's
    2-thread CPU pool when several vmapped initialisations ran at once (jax 0.10.2).
    """

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        n_rows, n_cols = int(np.prod(shape[:-1])), shape[-1]
        tall = (max(n_rows, n_cols), min(n_rows, n_cols))
        a = jax.random.normal(key, tall, jnp.float32)

        def column(q: jax.Array, j: jax.Array) -> tuple[jax.Array, None]:
            v = a[:, j]
            for _ in range(2):
                v = v - q @ (q.T @ v)  # columns >= j of q are still zero
            return q.at[:, j].set(v / jnp.linalg.norm(v)), None

        q, _ = jax.lax.scan(column, jnp.zeros(tall, jnp.float32), jnp.arange(tall[1]))
        if n_rows < n_cols:
            q = q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init


class MLP(nn.Module):
    """Fully connected network with orthogonal initialisation; last layer scaled by `out_scale`."""

    hidden: Sequence[int]
    out: int
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2.0)))(x))
        return nn.Dense(self.out, kernel_init=orthogonal(self.out_scale))(x)


class GaussianPolicy(nn.Module):
    """Diagonal Gaussian policy: state-dependent mean, state-independent log-std parameter.

    Returns (mean, log_std) with log_std broadcast to the mean's shape.
    """

    hidden: Sequence[int]
    action_size: int
    activation: str = "tanh"
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = MLP(self.hidden, self.action_size, self.activation, out_scale=0.01)(obs)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_size,)
        )
        return mean, jnp.broadcast_to(log_std, mean.shape)


class ValueNetwork(nn.Module):
    """State-value network V(s) -> scalar."""

    hidden: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return MLP(self.hidden, 1, self.activation, out_scale=1.0)(obs)[..., 0]
