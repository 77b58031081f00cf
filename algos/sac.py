"""SAC (Haarnoja et al. 2018): twin critics, tanh-Gaussian actor, automatic temperature.

The learner plugs into `rlx.offpolicy` (env loop, on-device replay); this module's
``init / update / policy`` are plain SAC. Every gradient step updates the critics, the actor,
the temperature and the target critics::

    a' ~ pi(.|s'),  y = scale r + gamma (1 - terminal) (min_j Q'_j(s', a') - alpha log pi(a'|s'))
    L_Q     = sum_j mean (Q_j(s, a) - y)^2
    L_pi    = mean (alpha log pi(a~|s) - min_j Q_j(s, a~)),       a~ ~ pi(.|s) (reparameterised)
    L_alpha = -mean log(alpha) (log pi(a~|s) + H_target),         H_target = -entropy_scale * A

with pi(.|s) = tanh(N(mu(s), sigma(s)^2)) and log pi corrected by -sum log(1 - tanh(u)^2).
"""

from __future__ import annotations

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from rlx.algos.td3 import init_twin_critic, regress_critics, twin_q

from rlx import offpolicy
from rlx.config import hparam, require, static
from rlx.networks import MLP

DESCRIPTION = "SAC: twin critics, tanh-Gaussian actor, auto temperature; on-device replay."

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@flax.struct.dataclass
class Config(offpolicy.Config):
    """SAC settings (defaults: CleanRL's, as used by the agency-transfer paper)."""

    autotune: bool = static(True, "Learn the temperature alpha towards the target entropy.")
    actor_lr: float = hparam(3e-4, "Actor Adam step size.")
    critic_lr: float = hparam(1e-3, "Critic Adam step size.")
    alpha_lr: float = hparam(1e-3, "Temperature Adam step size (autotune).")
    init_alpha: float = hparam(0.2, "Initial (or fixed, without autotune) temperature alpha.")
    entropy_scale: float = hparam(1.0, "Target entropy = -entropy_scale * action size.")

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


def _actor(config: Config, ls: dict) -> Actor:
    """The actor module, its width read off the output layer's bias (``Dense_<len(hidden)>``)."""
    out = ls["actor"]["params"]["MLP_0"][f"Dense_{len(config.hidden)}"]["bias"]
    return Actor(config.hidden, out.shape[-1] // 2)


def sample_action(
    actor: Actor, params, obs: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """a = tanh(u), u ~ N(mu, sigma^2); returns (a, log pi(a|s)) with the tanh correction."""
    mean, log_std = actor.apply(params, obs)
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    a = jnp.tanh(u)
    log_prob = -0.5 * (((u - mean) / jnp.exp(log_std)) ** 2 + 2 * log_std + np.log(2 * np.pi))
    log_prob = log_prob - jnp.log(1.0 - a**2 + 1e-6)
    return a, log_prob.sum(-1)


def init_learner(key: jax.Array, obs_size: int, action_size: int, config: Config) -> dict:
    """Actor, twin critic and its target, log alpha, and Adam states."""
    k_actor, k_critic = jax.random.split(key)
    actor = Actor(config.hidden, action_size).init(k_actor, jnp.zeros((obs_size,)))
    critic = init_twin_critic(k_critic, config.hidden, obs_size, action_size)
    log_alpha = jnp.log(jnp.asarray(config.init_alpha, jnp.float32))
    adam = optax.scale_by_adam()
    return {
        "actor": actor,
        "critic": critic,
        "critic_target": critic,
        "log_alpha": log_alpha,
        "actor_opt": adam.init(actor),
        "critic_opt": adam.init(critic),
        "alpha_opt": adam.init(log_alpha),
    }


def act(ls: dict, obs: jax.Array, config: Config) -> jax.Array:
    """The deterministic action tanh(mu(s))."""
    return jnp.tanh(_actor(config, ls).apply(ls["actor"], obs)[0])


def explore(ls: dict, obs: jax.Array, key: jax.Array, config: Config) -> jax.Array:
    """A sample of pi(.|s)."""
    return sample_action(_actor(config, ls), ls["actor"], obs, key)[0]


def certify(ls: dict, obs: jax.Array, action: jax.Array, config: Config) -> jax.Array:
    """min_j Q'_j(s, a) of the target critics."""
    return twin_q(ls["critic_target"], config.hidden, obs, action).min(0)


def learn(ls: dict, batches: offpolicy.Transition, key: jax.Array, config: Config):
    """One gradient step (a group of one): critics, actor, temperature, target critics."""
    batch = jax.tree.map(lambda x: x[0], batches)
    actor = _actor(config, ls)
    k_next, k_pi = jax.random.split(key)
    alpha = jnp.exp(ls["log_alpha"])
    a_next, logp_next = sample_action(actor, ls["actor"], batch.next_obs, k_next)
    q_next = twin_q(ls["critic_target"], config.hidden, batch.next_obs, a_next).min(0)
    fitted, critic_info = regress_critics(ls, batch, q_next - alpha * logp_next, config)
    critic, critic_opt = fitted["critic"], fitted["critic_opt"]

    def actor_loss(params):
        a, logp = sample_action(actor, params, batch.obs, k_pi)
        q = twin_q(critic, config.hidden, batch.obs, a).min(0)
        return (alpha * logp - q).mean(), logp

    (l_pi, logp), g_pi = jax.value_and_grad(actor_loss, has_aux=True)(ls["actor"])
    actor_params, actor_opt = offpolicy.adam_step(
        ls["actor"], g_pi, ls["actor_opt"], config.actor_lr
    )

    target_entropy = -config.entropy_scale * actor.action_size
    logp = jax.lax.stop_gradient(logp)
    l_alpha, g_alpha = jax.value_and_grad(lambda la: -(la * (logp + target_entropy)).mean())(
        ls["log_alpha"]
    )
    log_alpha, alpha_opt = offpolicy.adam_step(
        ls["log_alpha"], g_alpha, ls["alpha_opt"], config.alpha_lr
    )
    if not config.autotune:
        log_alpha, alpha_opt = ls["log_alpha"], ls["alpha_opt"]
    ls = {
        **ls,
        "actor": actor_params,
        "critic": critic,
        "critic_target": offpolicy.polyak(ls["critic_target"], critic, config.tau),
        "log_alpha": log_alpha,
        "actor_opt": actor_opt,
        "critic_opt": critic_opt,
        "alpha_opt": alpha_opt,
    }
    return ls, {
        **critic_info,
        "loss/actor": l_pi,
        "loss/alpha": l_alpha,
        "sac/alpha": alpha,
        "sac/entropy": -logp.mean(),
    }


LEARNER = offpolicy.Learner(
    init=init_learner,
    explore=explore,
    act=act,
    certify=certify,
    learn=learn,
    group_size=lambda config: 1,
)

ALGORITHM = offpolicy.assemble("sac", DESCRIPTION, Config, LEARNER, offpolicy.PLAIN)
