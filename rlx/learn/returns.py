"""Return and advantage estimators: small pure functions with shape checks."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminations: jax.Array,
    dones: jax.Array,
    gamma: jax.Array | float,
    lam: jax.Array | float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation with time-out bootstrapping, over a [T, ...] rollout.

    With ``V(s'_t)`` the value of the observation reached at step t *before* any auto-reset::

        delta_t = r_t + gamma * (1 - term_t) * V(s'_t) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},   A_T = 0

    ``term_t`` (true termination) stops bootstrapping; ``done_t`` (termination or time-out)
    cuts the trace at the episode boundary. A time-out therefore bootstraps from ``V(s'_t)``.

    Returns (advantages, value targets ``A_t + V(s_t)``), both shaped like `rewards`.
    """
    chex.assert_equal_shape([rewards, values, next_values, terminations, dones])
    chex.assert_type([rewards, values, next_values], float)
    deltas = rewards + gamma * (1.0 - terminations) * next_values - values

    def backward(carry: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, done = xs
        advantage = delta + gamma * lam * (1.0 - done) * carry
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, dones), reverse=True)
    return advantages, advantages + values
