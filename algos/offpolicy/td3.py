"""TD3 (Fujimoto et al. 2018): twin critics, target policy smoothing, delayed actor updates.

The learner (networks and losses) plugs into `rlx.algos.offpolicy.common`, which owns the env loop and the
on-device replay ring; this module's record (`ALGORITHM`) is plain TD3 (the executed
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

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax
from rlx.algos.offpolicy import common as offpolicy
from rlx.algos.offpolicy import critics

from rlx.config import hparam, require, static
from rlx.errors import RlxError
from rlx.learn.networks import MLP
from rlx.learn.optim import adam_step, polyak

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


@flax.struct.dataclass
class TD3State:
    """The learner's state: actor, twin critic (stacked on an axis of 2), their targets and
    Adam states, and the action size A (static)."""

    actor: Any
    critic: Any
    actor_target: Any
    critic_target: Any
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    action_size: int = flax.struct.field(pytree_node=False)


def _actor(config: Config, state: TD3State) -> Actor:
    """The actor module of this learner's sizes."""
    return Actor(config.hidden, state.action_size)


def target_action(
    state: TD3State, next_obs: jax.Array, key: jax.Array, config: Config
) -> jax.Array:
    """Target policy smoothing: a~' = clip(mu'(s') + clip(eps, -c, c), -1, 1),
    eps ~ N(0, policy_noise^2), c = noise_clip."""
    mu_next = _actor(config, state).apply(state.actor_target, next_obs)
    eps = config.policy_noise * jax.random.normal(key, mu_next.shape, mu_next.dtype)
    return jnp.clip(mu_next + jnp.clip(eps, -config.noise_clip, config.noise_clip), -1.0, 1.0)


def critic_step(
    state: TD3State, batch: offpolicy.Transition, key: jax.Array, config: Config
) -> tuple[TD3State, dict[str, jax.Array]]:
    """One regression step of both critics on y = scale r + gamma (1 - terminal) v',
    v' = min_j Q'_j(s', a~') (`target_action`)."""
    a_next = target_action(state, batch.next_obs, key, config)
    q_next = critics.twin_q(state.critic_target, config.hidden, batch.next_obs, a_next).min(0)
    critic, opt, info = critics.regress(state.critic, state.critic_opt, batch, q_next, config)
    return state.replace(critic=critic, critic_opt=opt), info


def actor_step(
    state: TD3State, batch: offpolicy.Transition, config: Config
) -> tuple[TD3State, jax.Array]:
    """One Adam step of the actor on L_mu = -mean Q_1(s, mu(s)); returns L_mu."""
    actor = _actor(config, state)

    def actor_loss(params: Any) -> jax.Array:
        q = critics.twin_q(state.critic, config.hidden, batch.obs, actor.apply(params, batch.obs))
        return -q[0].mean()

    value, grads = jax.value_and_grad(actor_loss)(state.actor)
    params, opt = adam_step(state.actor, grads, state.actor_opt, config.actor_lr)
    return state.replace(actor=params, actor_opt=opt), value


class TD3Learner:
    """TD3 as an `rlx.algos.offpolicy.common.Learner`: its state is a `TD3State`."""

    def init(
        self,
        key: jax.Array,
        obs_size: int,
        action_size: int,
        config: Config,
        action_scale: tuple[float, ...] | None = None,
    ) -> TD3State:
        """Actor, twin critic, their targets (copies) and Adam states (the action scale plays
        no part in TD3)."""
        k_actor, k_critic = jax.random.split(key)
        actor = Actor(config.hidden, action_size).init(k_actor, jnp.zeros((obs_size,)))
        critic = critics.init_twin(k_critic, config.hidden, obs_size, action_size)
        adam = optax.scale_by_adam()
        return TD3State(
            actor=actor,
            critic=critic,
            actor_target=actor,
            critic_target=critic,
            actor_opt=adam.init(actor),
            critic_opt=adam.init(critic),
            action_size=action_size,
        )

    def policy_params(self, state: TD3State) -> Any:
        """The actor's parameters (not its target, the critics or the optimiser states)."""
        return state.actor

    def act(self, params: Any, obs: jax.Array, action_size: int, config: Config) -> jax.Array:
        """The deterministic action mu(s)."""
        return Actor(config.hidden, action_size).apply(params, obs)

    def explore(
        self, params: Any, obs: jax.Array, key: jax.Array, action_size: int, config: Config
    ) -> jax.Array:
        """clip(mu(s) + N(0, exploration_noise^2), -1, 1)."""
        mu = self.act(params, obs, action_size, config)
        noise = config.exploration_noise * jax.random.normal(key, mu.shape, mu.dtype)
        return jnp.clip(mu + noise, -1.0, 1.0)

    def certify(
        self, state: TD3State, obs: jax.Array, action: jax.Array, config: Config
    ) -> jax.Array:
        """min_j Q'_j(s, a) of the target critics."""
        return critics.twin_q(state.critic_target, config.hidden, obs, action).min(0)

    def learn(
        self, state: TD3State, batches: offpolicy.Transition, key: jax.Array, config: Config
    ) -> tuple[TD3State, dict[str, jax.Array]]:
        """policy_frequency critic steps (one per batch), then one actor step on the last
        batch and the Polyak updates of both targets."""
        chex.assert_axis_dimension(batches.reward, 0, config.policy_frequency)

        def _critic(s: TD3State, xs: tuple[offpolicy.Transition, jax.Array]):
            batch, k = xs
            return critic_step(s, batch, k, config)

        keys = jax.random.split(key, config.policy_frequency)
        state, info = jax.lax.scan(_critic, state, (batches, keys))
        state, actor_loss = actor_step(state, jax.tree.map(lambda x: x[-1], batches), config)
        state = state.replace(
            actor_target=polyak(state.actor_target, state.actor, config.tau),
            critic_target=polyak(state.critic_target, state.critic, config.tau),
        )
        return state, {**{k: v.mean() for k, v in info.items()}, "loss/actor": actor_loss}

    def group_size(self, config: Config) -> int:
        """policy_frequency: the critic steps of one actor step."""
        return config.policy_frequency


LEARNER = TD3Learner()

ALGORITHM = offpolicy.assemble("td3", DESCRIPTION, Config, LEARNER, offpolicy.PLAIN)
