"""Twin Q critics shared by TD3 and SAC: the network, its paired parameters and one
regression step on the clipped double-Q target.

Two independent critics Q_1, Q_2 are kept as one parameter tree stacked on a leading axis of 2
(so both are evaluated by one `vmap`). One regression step is::

    y   = scale r + gamma (1 - terminal) v',    v' given by the learner, held fixed
    L_Q = sum_j mean_batch (Q_j(s, a) - y)^2

where TD3 takes v' = min_j Q'_j(s', a~') and SAC v' = min_j Q'_j(s', a') - alpha log pi(a'|s').
"""

from __future__ import annotations

from typing import Any, Protocol

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from rlx.algos.offpolicy.common import Transition

from rlx.learn.networks import MLP
from rlx.learn.optim import adam_step


class CriticSettings(Protocol):
    """The config fields a critic regression reads (TD3's and SAC's configs have them)."""

    hidden: tuple[int, ...]
    gamma: jax.Array
    reward_scaling: jax.Array
    critic_lr: jax.Array


class Critic(nn.Module):
    """Q(s, a) -> scalar, an MLP (ReLU) on the concatenation [s, a]."""

    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        return MLP(self.hidden, 1, "relu")(jnp.concatenate([obs, action], -1))[..., 0]


def init_twin(key: jax.Array, hidden: tuple[int, ...], obs_size: int, action_size: int) -> Any:
    """Parameters of two independently initialised critics, stacked on a leading axis of 2."""
    critic = Critic(hidden)
    obs, act = jnp.zeros((obs_size,)), jnp.zeros((action_size,))
    return jax.vmap(lambda k: critic.init(k, obs, act))(jax.random.split(key))


def twin_q(params: Any, hidden: tuple[int, ...], obs: jax.Array, action: jax.Array) -> jax.Array:
    """[Q_1(s, a), Q_2(s, a)]: shape ``[2, *batch]`` for obs ``[*batch, O]``, action ``[*batch, A]``."""
    chex.assert_equal_shape_prefix([obs, action], obs.ndim - 1)
    q = jax.vmap(lambda p: Critic(hidden).apply(p, obs, action))(params)
    chex.assert_shape(q, (2, *obs.shape[:-1]))
    return q


def td_target(
    reward: jax.Array,
    terminal: jax.Array,
    next_value: jax.Array,
    gamma: jax.Array,
    reward_scaling: jax.Array,
) -> jax.Array:
    """The one-step target y = scale r + gamma (1 - terminal) v' (no bootstrap past a
    termination; a time-out is not a termination). All of shape ``[B]``."""
    chex.assert_equal_shape([reward, terminal, next_value])
    return reward_scaling * reward + gamma * (1.0 - terminal) * next_value


def regress(
    params: Any,
    opt_state: optax.OptState,
    batch: Transition,
    next_value: jax.Array,
    config: CriticSettings,
) -> tuple[Any, optax.OptState, dict[str, jax.Array]]:
    """One Adam step (step size ``critic_lr``) of both critics on
    L_Q = sum_j mean (Q_j(s, a) - y)^2, y = `td_target` with v' = `next_value` held fixed.

    Returns the new twin parameters, their Adam state and ``loss/critic`` (L_Q) and
    ``q/mean`` (mean of Q_j(s, a) over both critics and the batch).
    """
    chex.assert_rank(batch.reward, 1)
    y = td_target(batch.reward, batch.terminal, next_value, config.gamma, config.reward_scaling)
    y = jax.lax.stop_gradient(y)

    def loss(p: Any) -> tuple[jax.Array, jax.Array]:
        q = twin_q(p, config.hidden, batch.obs, batch.action)
        return ((q - y) ** 2).mean(1).sum(), q.mean()

    (value, q_mean), grads = jax.value_and_grad(loss, has_aux=True)(params)
    params, opt_state = adam_step(params, grads, opt_state, config.critic_lr)
    return params, opt_state, {"loss/critic": value, "q/mean": q_mean}
