"""TD3 (Fujimoto et al. 2018): twin critics, target policy smoothing, delayed actor updates.

The learner (networks and losses) plugs into `rlx.offpolicy`, which owns the env loop and the
on-device replay ring; this module's ``init / update / policy`` are plain TD3 (the executed
action is the learner's). One learner call (`learn`) is one *group* of ``policy_frequency``
gradient steps: ``policy_frequency`` critic steps, then one actor step and one Polyak update
of both targets, so the delay costs no masked-out computation::

    y      = scale r + gamma (1 - terminal) min_j Q'_j(s', clip(mu'(s') + clip(eps, -c, c), -1, 1))
    L_Q    = sum_j mean (Q_j(s, a) - y)^2                    eps ~ N(0, policy_noise^2)
    L_mu   = -mean Q_1(s, mu(s))
    theta' <- (1 - tau) theta' + tau theta

Behaviour action: ``clip(mu(s) + N(0, exploration_noise^2), -1, 1)``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from rlx import offpolicy
from rlx.config import hparam, require, static
from rlx.errors import RlxError
from rlx.networks import MLP

DESCRIPTION = "TD3: twin critics, target smoothing, delayed actor; on-device replay, many envs."


@flax.struct.dataclass
class Config(offpolicy.Config):
    """TD3 settings (defaults: Fujimoto et al. / CleanRL, as used by the agency-transfer paper)."""

    policy_frequency: int = static(2, "Critic steps per actor and target update (policy delay).")
    actor_lr: float = hparam(3e-4, "Actor Adam step size.")
    critic_lr: float = hparam(3e-4, "Critic Adam step size.")
    exploration_noise: float = hparam(0.1, "Std of the Gaussian behaviour noise.")
    policy_noise: float = hparam(0.2, "Std of the target policy smoothing noise.")
    noise_clip: float = hparam(0.5, "Clip of the target policy smoothing noise.")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        super().validate()
        if self.policy_frequency <= 0 or self.grad_steps % self.policy_frequency:
            raise RlxError(
                f"policy_frequency={self.policy_frequency} must be positive and divide the "
                f"gradient steps per update (utd_ratio*num_envs*unroll_length = {self.grad_steps})."
            )
        require(
            self,
            actor_lr=(lambda v: v > 0, "> 0"),
            critic_lr=(lambda v: v > 0, "> 0"),
            exploration_noise=(lambda v: v >= 0, ">= 0"),
            policy_noise=(lambda v: v >= 0, ">= 0"),
            noise_clip=(lambda v: v >= 0, ">= 0"),
        )


class Actor(nn.Module):
    """Deterministic policy mu(s) = tanh(MLP(s)) in [-1, 1]^A."""

    hidden: tuple[int, ...]
    action_size: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return jnp.tanh(MLP(self.hidden, self.action_size, "relu", out_scale=0.01)(obs))


class Critic(nn.Module):
    """Q(s, a) -> scalar, an MLP on [s, a]."""

    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        return MLP(self.hidden, 1, "relu")(jnp.concatenate([obs, action], -1))[..., 0]


def init_twin_critic(key: jax.Array, hidden: tuple[int, ...], obs_size: int, action_size: int):
    """Parameters of two independent critics, stacked on a leading axis of 2."""
    critic = Critic(hidden)
    obs, act = jnp.zeros((obs_size,)), jnp.zeros((action_size,))
    return jax.vmap(lambda k: critic.init(k, obs, act))(jax.random.split(key))


def twin_q(params: Any, hidden: tuple[int, ...], obs: jax.Array, action: jax.Array) -> jax.Array:
    """[Q_1(s, a), Q_2(s, a)] stacked on a leading axis of 2."""
    return jax.vmap(lambda p: Critic(hidden).apply(p, obs, action))(params)


def _actor(config: Config, ls: dict) -> Actor:
    """The actor module, its width read off the output layer's bias (``Dense_<len(hidden)>``)."""
    out = ls["actor"]["params"]["MLP_0"][f"Dense_{len(config.hidden)}"]["bias"]
    return Actor(config.hidden, out.shape[-1])


def init_learner(key: jax.Array, obs_size: int, action_size: int, config: Config) -> dict:
    """Actor, twin critic, their targets (copies) and Adam states."""
    k_actor, k_critic = jax.random.split(key)
    actor = Actor(config.hidden, action_size).init(k_actor, jnp.zeros((obs_size,)))
    critic = init_twin_critic(k_critic, config.hidden, obs_size, action_size)
    adam = optax.scale_by_adam()
    return {
        "actor": actor,
        "critic": critic,
        "actor_target": actor,
        "critic_target": critic,
        "actor_opt": adam.init(actor),
        "critic_opt": adam.init(critic),
    }


def act(ls: dict, obs: jax.Array, config: Config) -> jax.Array:
    """The deterministic action mu(s)."""
    return _actor(config, ls).apply(ls["actor"], obs)


def explore(ls: dict, obs: jax.Array, key: jax.Array, config: Config) -> jax.Array:
    """clip(mu(s) + N(0, exploration_noise^2), -1, 1)."""
    mu = act(ls, obs, config)
    noise = config.exploration_noise * jax.random.normal(key, mu.shape, mu.dtype)
    return jnp.clip(mu + noise, -1.0, 1.0)


def certify(ls: dict, obs: jax.Array, action: jax.Array, config: Config) -> jax.Array:
    """min_j Q'_j(s, a) of the target critics."""
    return twin_q(ls["critic_target"], config.hidden, obs, action).min(0)


def _critic_step(ls: dict, batch: offpolicy.Transition, key: jax.Array, config: Config):
    actor = _actor(config, ls)
    mu_next = actor.apply(ls["actor_target"], batch.next_obs)
    eps = config.policy_noise * jax.random.normal(key, mu_next.shape, mu_next.dtype)
    a_next = jnp.clip(mu_next + jnp.clip(eps, -config.noise_clip, config.noise_clip), -1.0, 1.0)
    q_next = twin_q(ls["critic_target"], config.hidden, batch.next_obs, a_next).min(0)
    return regress_critics(ls, batch, q_next, config)


def regress_critics(ls: dict, batch: offpolicy.Transition, next_value: jax.Array, config):
    """One Adam step of both critics on L_Q = sum_j mean (Q_j(s, a) - y)^2 with
    y = scale r + gamma (1 - terminal) next_value (next_value held fixed)."""
    y = config.reward_scaling * batch.reward + config.gamma * (1.0 - batch.terminal) * next_value
    y = jax.lax.stop_gradient(y)

    def loss(params):
        q = twin_q(params, config.hidden, batch.obs, batch.action)
        return ((q - y) ** 2).mean(1).sum(), q.mean()

    (value, q_mean), grads = jax.value_and_grad(loss, has_aux=True)(ls["critic"])
    critic, opt = offpolicy.adam_step(ls["critic"], grads, ls["critic_opt"], config.critic_lr)
    return {**ls, "critic": critic, "critic_opt": opt}, {"loss/critic": value, "q/mean": q_mean}


def learn(ls: dict, batches: offpolicy.Transition, key: jax.Array, config: Config):
    """policy_frequency critic steps (one per batch), then one actor step and target updates."""
    keys = jax.random.split(key, config.policy_frequency)

    def _critic(ls, xs):
        batch, k = xs
        return _critic_step(ls, batch, k, config)

    ls, info = jax.lax.scan(_critic, ls, (batches, keys))
    batch = jax.tree.map(lambda x: x[-1], batches)
    actor = _actor(config, ls)

    def actor_loss(params):
        q = twin_q(ls["critic"], config.hidden, batch.obs, actor.apply(params, batch.obs))
        return -q[0].mean()

    value, grads = jax.value_and_grad(actor_loss)(ls["actor"])
    actor_params, opt = offpolicy.adam_step(ls["actor"], grads, ls["actor_opt"], config.actor_lr)
    ls = {
        **ls,
        "actor": actor_params,
        "actor_opt": opt,
        "actor_target": offpolicy.polyak(ls["actor_target"], actor_params, config.tau),
        "critic_target": offpolicy.polyak(ls["critic_target"], ls["critic"], config.tau),
    }
    return ls, {**{k: v.mean() for k, v in info.items()}, "loss/actor": value}


LEARNER = offpolicy.Learner(
    init=init_learner,
    explore=explore,
    act=act,
    certify=certify,
    learn=learn,
    group_size=lambda config: config.policy_frequency,
)

ALGORITHM = offpolicy.assemble("td3", DESCRIPTION, Config, LEARNER, offpolicy.PLAIN)
