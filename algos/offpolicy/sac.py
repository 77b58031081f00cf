"""SAC (Haarnoja et al. 2018): twin critics, tanh-Gaussian actor, automatic temperature.

The learner plugs into `rlx.algos.offpolicy.common` (env loop, on-device replay); this module's
record (`ALGORITHM`) is plain SAC. Every gradient step updates the critics, the actor,
the temperature and the target critics::

    a' ~ pi(.|s'),  y = scale r + gamma (1 - terminal) (min_j Q'_j(s', a') - alpha log pi(a'|s'))
    L_Q     = sum_j mean (Q_j(s, a) - y)^2
    L_pi    = mean (alpha log pi(a~|s) - min_j Q_j(s, a~)),       a~ ~ pi(.|s) (reparameterised)
    L_alpha = -mean log(alpha) (log pi(a~|s) + H_target)

with pi(.|s) = tanh(N(mu(s), sigma(s)^2)) and log pi corrected by -sum log(1 - tanh(u)^2).
The target entropy is CleanRL's -entropy_scale * A for the policy over the env's *physical*
actions s_i a_i (s: the env's `action_scale`; CleanRL's log-prob includes the action-scale
Jacobian), which for the normalised actions rlx samples is

    H_target = -entropy_scale * A - sum_i log s_i

(= -A on envs with actions in [-1, 1]; -1.31 on the underwater drone, s = (1, 0.5), and -2.14
on the treasure robot, s = (pi,)).
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from rlx.algos.offpolicy import common as offpolicy
from rlx.algos.offpolicy import critics

from rlx.config import hparam, require, static
from rlx.learn.networks import MLP
from rlx.learn.optim import adam_step, polyak

DESCRIPTION = "SAC: twin critics, tanh-Gaussian actor, auto temperature; on-device replay."

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@flax.struct.dataclass
class Config(offpolicy.Config):
    """SAC settings (defaults: CleanRL's, as used by the agency-transfer paper)."""

    autotune: bool = static(True, "Learn the temperature alpha towards the target entropy.")
    actor_lr: float = hparam(3e-4, "Actor Adam step size.")
    critic_lr: float = hparam(1e-3, "Critic Adam step size.")
    alpha_lr: float = hparam(1e-3, "Temperature Adam step size (autotune).")
    init_alpha: float = hparam(
        1.0, "Initial (or fixed, without autotune) temperature alpha (CleanRL: log alpha = 0)."
    )
    entropy_scale: float = hparam(
        1.0, "Target entropy = -entropy_scale * action size, in the env's physical units."
    )

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        super().validate()
        require(
            self,
            actor_lr=(lambda v: v > 0, "> 0"),
            critic_lr=(lambda v: v > 0, "> 0"),
            alpha_lr=(lambda v: v > 0, "> 0"),
            init_alpha=(lambda v: v > 0, "> 0"),
            entropy_scale=(lambda v: v >= 0, ">= 0"),
        )


class Actor(nn.Module):
    """(mu(s), log sigma(s)), log sigma squashed into [LOG_STD_MIN, LOG_STD_MAX]."""

    hidden: tuple[int, ...]
    action_size: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(self.hidden, 2 * self.action_size, "relu", out_scale=0.01)(obs)
        mean, raw = jnp.split(out, 2, axis=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)
        return mean, log_std


@flax.struct.dataclass
class SACState:
    """The learner's state: actor, twin critic (stacked on an axis of 2) and its target,
    log alpha, their Adam states, the action size A and sum_i log s_i of the env's action
    scale (static)."""

    actor: Any
    critic: Any
    critic_target: Any
    log_alpha: jax.Array
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    alpha_opt: optax.OptState
    action_size: int = flax.struct.field(pytree_node=False)
    log_action_scale: float = flax.struct.field(pytree_node=False, default=0.0)


def target_entropy(state: SACState, config: Config) -> float | jax.Array:
    """H_target = -entropy_scale * A - sum_i log s_i (see the module docstring)."""
    return -config.entropy_scale * state.action_size - state.log_action_scale


def _actor(config: Config, state: SACState) -> Actor:
    """The actor module of this learner's sizes."""
    return Actor(config.hidden, state.action_size)


def sample_action(
    actor: Actor, params: Any, obs: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """a = tanh(u), u ~ N(mu, sigma^2); returns (a, log pi(a|s)) with the tanh correction
    log pi(a|s) = sum_i [log N(u_i; mu_i, sigma_i^2) - log(1 - a_i^2 + 1e-6)]."""
    mean, log_std = actor.apply(params, obs)
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    a = jnp.tanh(u)
    log_prob = -0.5 * (((u - mean) / jnp.exp(log_std)) ** 2 + 2 * log_std + np.log(2 * np.pi))
    log_prob = log_prob - jnp.log(1.0 - a**2 + 1e-6)
    return a, log_prob.sum(-1)


def critic_step(
    state: SACState, batch: offpolicy.Transition, key: jax.Array, config: Config
) -> tuple[SACState, dict[str, jax.Array]]:
    """One regression step of both critics on y = scale r + gamma (1 - terminal) v',
    v' = min_j Q'_j(s', a') - alpha log pi(a'|s'), a' ~ pi(.|s')."""
    alpha = jnp.exp(state.log_alpha)
    a_next, logp_next = sample_action(_actor(config, state), state.actor, batch.next_obs, key)
    q_next = critics.twin_q(state.critic_target, config.hidden, batch.next_obs, a_next).min(0)
    critic, opt, info = critics.regress(
        state.critic, state.critic_opt, batch, q_next - alpha * logp_next, config
    )
    return state.replace(critic=critic, critic_opt=opt), info


def actor_step(
    state: SACState, batch: offpolicy.Transition, key: jax.Array, config: Config
) -> tuple[SACState, jax.Array, jax.Array]:
    """One Adam step of the actor on L_pi = mean (alpha log pi(a~|s) - min_j Q_j(s, a~)),
    a~ ~ pi(.|s) reparameterised; returns L_pi and the (gradient-free) log pi(a~|s) ``[B]``."""
    actor, alpha = _actor(config, state), jnp.exp(state.log_alpha)

    def actor_loss(params: Any) -> tuple[jax.Array, jax.Array]:
        a, logp = sample_action(actor, params, batch.obs, key)
        q = critics.twin_q(state.critic, config.hidden, batch.obs, a).min(0)
        return (alpha * logp - q).mean(), logp

    (value, logp), grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor)
    params, opt = adam_step(state.actor, grads, state.actor_opt, config.actor_lr)
    return state.replace(actor=params, actor_opt=opt), value, jax.lax.stop_gradient(logp)


def temperature_step(
    state: SACState, logp: jax.Array, config: Config
) -> tuple[SACState, jax.Array]:
    """One Adam step of log alpha on L_alpha = -mean log(alpha) (log pi(a~|s) + H_target),
    H_target = `target_entropy` (held fixed without ``autotune``); returns L_alpha."""
    chex.assert_rank(logp, 1)
    h_target = target_entropy(state, config)
    value, grad = jax.value_and_grad(lambda la: -(la * (logp + h_target)).mean())(state.log_alpha)
    log_alpha, opt = adam_step(state.log_alpha, grad, state.alpha_opt, config.alpha_lr)
    if not config.autotune:
        log_alpha, opt = state.log_alpha, state.alpha_opt
    return state.replace(log_alpha=log_alpha, alpha_opt=opt), value


class SACLearner:
    """SAC as an `rlx.algos.offpolicy.common.Learner`: its state is a `SACState`."""

    def init(
        self,
        key: jax.Array,
        obs_size: int,
        action_size: int,
        config: Config,
        action_scale: tuple[float, ...] | None = None,
    ) -> SACState:
        """Actor, twin critic and its target, log alpha, and Adam states; ``action_scale``
        (ones if None) sets the target entropy's units."""
        k_actor, k_critic = jax.random.split(key)
        actor = Actor(config.hidden, action_size).init(k_actor, jnp.zeros((obs_size,)))
        critic = critics.init_twin(k_critic, config.hidden, obs_size, action_size)
        log_alpha = jnp.log(jnp.asarray(config.init_alpha, jnp.float32))
        adam = optax.scale_by_adam()
        return SACState(
            actor=actor,
            critic=critic,
            critic_target=critic,
            log_alpha=log_alpha,
            actor_opt=adam.init(actor),
            critic_opt=adam.init(critic),
            alpha_opt=adam.init(log_alpha),
            action_size=action_size,
            log_action_scale=float(np.log(np.asarray(action_scale or 1.0)).sum()),
        )

    def policy_params(self, state: SACState) -> Any:
        """The actor's parameters (not the critics, temperature or optimiser states)."""
        return state.actor

    def act(self, params: Any, obs: jax.Array, action_size: int, config: Config) -> jax.Array:
        """The deterministic action tanh(mu(s))."""
        return jnp.tanh(Actor(config.hidden, action_size).apply(params, obs)[0])

    def explore(
        self, params: Any, obs: jax.Array, key: jax.Array, action_size: int, config: Config
    ) -> jax.Array:
        """A sample of pi(.|s)."""
        return sample_action(Actor(config.hidden, action_size), params, obs, key)[0]

    def certify(
        self, state: SACState, obs: jax.Array, action: jax.Array, config: Config
    ) -> jax.Array:
        """min_j Q'_j(s, a) of the target critics."""
        return critics.twin_q(state.critic_target, config.hidden, obs, action).min(0)

    def learn(
        self, state: SACState, batches: offpolicy.Transition, key: jax.Array, config: Config
    ) -> tuple[SACState, dict[str, jax.Array]]:
        """One gradient step (a group of one): critics, then the actor (against the updated
        critics), the temperature and the Polyak update of the target critics."""
        chex.assert_axis_dimension(batches.reward, 0, 1)
        batch = jax.tree.map(lambda x: x[0], batches)
        k_next, k_pi = jax.random.split(key)
        alpha = jnp.exp(state.log_alpha)
        state, critic_info = critic_step(state, batch, k_next, config)
        state, actor_loss, logp = actor_step(state, batch, k_pi, config)
        state, alpha_loss = temperature_step(state, logp, config)
        state = state.replace(critic_target=polyak(state.critic_target, state.critic, config.tau))
        return state, {
            **critic_info,
            "loss/actor": actor_loss,
            "loss/alpha": alpha_loss,
            "sac/alpha": alpha,
            "sac/entropy": -logp.mean(),
        }

    def group_size(self, config: Config) -> int:
        """1: every gradient step updates everything."""
        return 1


LEARNER = SACLearner()

ALGORITHM = offpolicy.assemble("sac", DESCRIPTION, Config, LEARNER, offpolicy.PLAIN)
