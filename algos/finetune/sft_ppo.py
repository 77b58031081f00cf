"""PPO fine-tuning of a pretrained policy from one binary outcome per episode: the standard
online-RL baseline beside HABC and its ablations (same pretrained policy, episode budget,
gradient steps and batch size; no interventions).

The policy is the pretrained ``bc`` policy's mean with a learned state-independent spread,

    pi_theta(a | s) = N(mu_theta(s), diag(exp(2 log_sigma))),  mu_theta(s) = tanh(MLP_theta(norm(s))),

with ``log_sigma`` initialised to log(``init_std``) (HABC's exploration noise by default) and
``norm`` the demonstrations' statistics (frozen); the env gets clip(a, -1, 1). The critic
V_phi(s) = MLP_phi(norm(s)) is fresh. One `update`:

1. **Collect** ``num_envs`` episodes of ``episode_length`` steps side by side, no resets (a
   step after the episode's end is not valid). The reward is the outcome: r_t = 1 on the step
   the goal is reached, else 0. An episode ends at success, at the env's own termination or
   at the last step; every end is terminal, since an episode that runs out of time has
   failed (its outcome is 0, not a truncation to bootstrap over).
2. **Advantages** (`episode_advantages`, GAE with the critic before this update):
   delta_t = r_t + gamma (1 - end_t) V(s_{t+1}) - V(s_t),
   A_t = delta_t + gamma lambda (1 - end_t) A_{t+1}; value targets A_t + V(s_t).
3. **Critic**: ``critic_steps`` Adam steps on 1/2 (V_phi(s) - target)^2 over minibatches of
   ``batch_size`` valid rows drawn with replacement.
4. **Policy** (after ``warmup_updates`` critic-only updates): ``policy_steps`` Adam steps on
   the clipped surrogate

       L(theta) = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)] - c_H H[pi_theta],
       rho = pi_theta(a | s) / pi_old(a | s),

   with A standardised per minibatch and a the unclipped Gaussian sample. With ``target_kl``
   > 0 the update stops early (as CleanRL's and Stable-Baselines3's PPO do): a step whose
   minibatch already has approx KL(pi_old || pi_theta) = E[(rho - 1) - log rho] above
   ``target_kl`` is not taken, nor is any later step of the update.

The budget ``total_steps`` counts online episodes.
``update -> collect -> episode_advantages -> (fit_critic, improve_policy)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import flax.struct
import jax
import jax.numpy as jnp
import optax
from brax.envs.base import Env
from rlx.algos.finetune import common
from rlx.algos.ppo import apply_step, clipped_surrogate

from rlx import envs as env_lib
from rlx.algorithm import Algorithm, Unit
from rlx.config import EpisodeBudget, hparam, require, require_counts, static
from rlx.data.assets import Assets
from rlx.errors import RlxError
from rlx.learn import normalizer
from rlx.learn.distributions import gaussian_entropy, gaussian_log_prob
from rlx.learn.networks import ACTIVATIONS, ValueNetwork
from rlx.learn.returns import gae
from rlx.metrics import EPISODES, MetricRule

DESCRIPTION = "PPO fine-tuning of the pretrained (SFT) policy from the sparse outcome."


@flax.struct.dataclass
class Config(EpisodeBudget):
    """Settings (module docstring). Static fields fix the program; hyperparameters are
    vmappable leaves."""

    total_steps: int = static(1024, "Online episodes per run.")
    num_envs: int = static(32, "Episodes collected side by side per update.")
    episode_length: int = static(0, "Steps per episode (0: the env's default).")
    hidden: tuple[int, ...] = static((256, 256), "Policy hidden widths (the pretrained one's).")
    activation: str = static("relu", "Policy activation (the pretrained one's).")
    critic_hidden: tuple[int, ...] = static((256, 256), "Value network hidden widths (relu).")
    critic_steps: int = static(50, "Adam steps on the value network per update.")
    policy_steps: int = static(50, "Clipped-surrogate Adam steps per update.")
    batch_size: int = static(256, "Rows per gradient step, drawn from the update's steps.")
    warmup_updates: int = static(2, "First updates that fit only the (fresh) critic.")
    learn_std: bool = static(True, "Learn log_sigma (else it stays at log(init_std)).")
    init_std: float = hparam(0.1, "Initial sigma of the Gaussian (HABC's explore_std).")
    policy_lr: float = hparam(1e-4, "Adam step size of the policy.")
    critic_lr: float = hparam(1e-3, "Adam step size of the value network.")
    gamma: float = hparam(0.99, "Discount.")
    gae_lambda: float = hparam(0.95, "GAE lambda.")
    clip_eps: float = hparam(0.2, "PPO ratio clip epsilon.")
    target_kl: float = hparam(
        0.0, "Stop the update's policy steps once a minibatch's approx KL exceeds it (0: never)."
    )
    entropy_coef: float = hparam(0.0, "Entropy bonus coefficient c_H.")
    max_grad_norm: float = hparam(0.5, "Global gradient-norm clip of both networks.")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        require_counts(self, ("total_steps", "num_envs", "critic_steps", "policy_steps",
                              "batch_size"), ("episode_length", "warmup_updates"))  # fmt: skip
        self.check_episode_budget()
        if self.activation not in ACTIVATIONS:
            raise RlxError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}."
            )
        if not all(w > 0 for w in (*self.hidden, *self.critic_hidden)):
            raise RlxError("hidden and critic_hidden widths must be positive integers.")
        positive = (lambda v: v > 0, "> 0")
        require(
            self,
            init_std=positive, policy_lr=(lambda v: v >= 0, ">= 0"), critic_lr=positive,
            gamma=(lambda v: 0 < v <= 1, "in (0, 1]"), gae_lambda=(lambda v: 0 <= v <= 1,
            "in [0, 1]"), clip_eps=positive, entropy_coef=(lambda v: v >= 0, ">= 0"),
            max_grad_norm=positive, target_kl=(lambda v: v >= 0, ">= 0 (0: no early stop)"),
        )  # fmt: skip


@flax.struct.dataclass
class SftPpoState:
    """Policy (pretrained mean network and log_sigma), critic, their optimiser states, the
    frozen observation statistics, RNG and update counter."""

    config: Config
    policy: dict[str, Any]  # {"mean": TanhPolicy params, "log_std": [A]}
    critic: Any
    policy_opt: optax.OptState
    critic_opt: optax.OptState
    obs_stats: normalizer.RunningStats
    key: jax.Array
    update_step: jax.Array


class Episodes(NamedTuple):
    """One update's episodes, time-major [T, E] per step (``obs``/``next_obs``/``action`` add
    a width)."""

    obs: jax.Array  # normalised
    next_obs: jax.Array  # normalised
    action: jax.Array  # the unclipped Gaussian sample
    log_prob: jax.Array  # log pi_old(a | s)
    reward: jax.Array  # 1 on the success step, else 0
    end: jax.Array  # bool: the episode's last step
    valid: jax.Array  # bool, a prefix of each column
    success: jax.Array  # [E] bool


class Batch(NamedTuple):
    """The update's steps for the gradient steps, flattened to [T*E], and the valid ones."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    advantage: jax.Array
    target: jax.Array
    rows: common.Pool  # the valid rows a gradient step draws from


def _critic(config: Config) -> ValueNetwork:
    return ValueNetwork(config.critic_hidden, "relu")


def _tx(config: Config) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.scale_by_adam())


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> SftPpoState:
    """The pretrained mean network and its observation statistics (from the asset),
    log_sigma = log(init_std), a fresh critic and Adam moments."""
    mean_params, obs_stats = common.pretrained_start(assets, "sft_ppo")
    k_critic, k_next = jax.random.split(key)
    dummy = jnp.zeros((env_lib.observation_size(env),), jnp.float32)
    critic = _critic(config).init(k_critic, dummy)
    log_std = jnp.full((env.action_size,), jnp.log(config.init_std), jnp.float32)
    policy = {"mean": mean_params, "log_std": log_std}
    tx = _tx(config)
    return SftPpoState(
        config=config,
        policy=policy,
        critic=critic,
        policy_opt=tx.init(policy),
        critic_opt=tx.init(critic),
        obs_stats=obs_stats,
        key=k_next,
        update_step=jnp.zeros((), jnp.int32),
    )


def policy_params(state: SftPpoState) -> dict[str, Any]:
    """The policy in ``bc``'s artifact form (mean network and obs statistics) plus log_sigma."""
    return {
        "policy": state.policy["mean"],
        "log_std": state.policy["log_std"],
        "obs_stats": normalizer.as_dict(state.obs_stats),
    }


def make_policy(params: dict[str, Any], env: Env, config: Config) -> Callable[..., jax.Array]:
    """act(obs, key, deterministic): mu_theta(obs), or a sample of pi_theta clipped to [-1, 1]."""
    net = common.policy_net(env, config)

    def act(obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
        stats = normalizer.from_dict(params["obs_stats"])
        mean = net.apply(params["policy"], normalizer.normalize(stats, obs))
        if deterministic:
            return mean
        noise = jnp.exp(params["log_std"]) * jax.random.normal(key, mean.shape, mean.dtype)
        return jnp.clip(mean + noise, -1.0, 1.0)

    return act


def _log_std(config: Config, policy: dict[str, Any]) -> jax.Array:
    if config.learn_std:
        return policy["log_std"]
    return jax.lax.stop_gradient(policy["log_std"])


# --- 1. collection ---------------------------------------------------------------------------


def collect(env: Env, state: SftPpoState, key: jax.Array) -> Episodes:
    """``num_envs`` episodes of pi_theta with the outcome as reward (module docstring, step 1)."""
    config, net = state.config, common.policy_net(env, state.config)
    length = config.episode_length or env_lib.episode_length(env)
    n = config.num_envs
    norm = lambda o: normalizer.normalize(state.obs_stats, o)  # noqa: E731
    k_reset, k_steps = jax.random.split(key)

    def _step(carry, step_key):
        env_state, alive, won = carry
        obs = norm(env_state.obs)
        mean = net.apply(state.policy["mean"], obs)
        log_std = jnp.broadcast_to(state.policy["log_std"], mean.shape)
        action = mean + jnp.exp(log_std) * jax.random.normal(step_key, mean.shape, mean.dtype)
        nxt = jax.vmap(env.step)(env_state, jnp.clip(action, -1.0, 1.0))
        live = alive > 0
        reached = live & (nxt.metrics["goal_reached"] > 0)
        row = (obs, norm(nxt.obs), action, gaussian_log_prob(action, mean, log_std),
               reached.astype(jnp.float32), live & (nxt.done > 0), live)  # fmt: skip
        return (nxt, alive * (1.0 - nxt.done), won | reached), row

    first = jax.vmap(env.reset)(jax.random.split(k_reset, n))
    carry = (first, jnp.ones((n,), jnp.float32), jnp.zeros((n,), bool))
    (_, _, won), rows = jax.lax.scan(_step, carry, jax.random.split(k_steps, length))
    obs, next_obs, action, log_prob, reward, end, valid = rows
    end = end.at[-1].set(end[-1] | valid[-1])  # the horizon ends every episode still running
    return Episodes(obs, next_obs, action, log_prob, reward, end, valid, won)


# --- 2. advantages ---------------------------------------------------------------------------


def episode_advantages(
    reward: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    end: jax.Array,
    valid: jax.Array,
    gamma: jax.Array | float,
    lam: jax.Array | float,
) -> tuple[jax.Array, jax.Array]:
    """GAE over [T, E] episodes in which every end is terminal (module docstring, step 2):
    (advantages, value targets), 0 on steps that are not valid."""
    chex.assert_equal_shape([reward, values, next_values, end, valid])
    stop = (end | ~valid).astype(jnp.float32)
    adv, targets = gae(reward, values, next_values, stop, stop, gamma, lam)
    return jnp.where(valid, adv, 0.0), jnp.where(valid, targets, 0.0)


def to_batch(state: SftPpoState, ep: Episodes) -> Batch:
    """The episodes' steps as [T*E] rows with their advantages under the current critic."""
    config = state.config
    critic = lambda o: _critic(config).apply(state.critic, o)  # noqa: E731
    adv, targets = episode_advantages(ep.reward, critic(ep.obs), critic(ep.next_obs), ep.end,
                                      ep.valid, config.gamma, config.gae_lambda)  # fmt: skip
    flat = lambda x: x.reshape((-1, *x.shape[2:]))  # noqa: E731
    columns = (flat(x) for x in (ep.obs, ep.action, ep.log_prob, adv, targets))
    return Batch(*columns, common.pool(flat(ep.valid)))


# --- 3. and 4. gradient steps ----------------------------------------------------------------


def fit_critic(state: SftPpoState, batch: Batch, key: jax.Array) -> tuple[SftPpoState, jax.Array]:
    """``critic_steps`` Adam steps on 1/2 (V(s) - target)^2; returns the mean loss."""
    config, critic, tx = state.config, _critic(state.config), _tx(state.config)

    def loss(params, idx):
        return 0.5 * jnp.mean((critic.apply(params, batch.obs[idx]) - batch.target[idx]) ** 2)

    def one(carry, k):
        value, grads = jax.value_and_grad(loss)(
            carry[0], common.draw(k, batch.rows, config.batch_size)
        )
        return apply_step(tx, config.critic_lr, grads, *carry), value

    keys = jax.random.split(key, config.critic_steps)
    (params, opt), losses = jax.lax.scan(one, (state.critic, state.critic_opt), keys)
    return state.replace(critic=params, critic_opt=opt), losses.mean()


def improve_policy(env: Env, state: SftPpoState, batch: Batch, key: jax.Array
                   ) -> tuple[SftPpoState, dict[str, jax.Array]]:  # fmt: skip
    """``policy_steps`` Adam steps on the clipped surrogate less the entropy bonus."""
    config, net, tx = state.config, common.policy_net(env, state.config), _tx(state.config)

    def loss(policy, idx):
        mean = net.apply(policy["mean"], batch.obs[idx])
        log_std = jnp.broadcast_to(_log_std(config, policy), mean.shape)
        log_prob = gaussian_log_prob(batch.action[idx], mean, log_std)
        surrogate, info = clipped_surrogate(log_prob, batch.log_prob[idx], batch.advantage[idx],
                                            config.clip_eps)  # fmt: skip
        entropy = jnp.mean(gaussian_entropy(log_std))
        return surrogate - config.entropy_coef * entropy, {
            **info,
            "loss/policy": surrogate,
            "loss/entropy": entropy,
        }

    def one(carry, k):
        params, opt, stopped = carry
        grads, info = jax.grad(loss, has_aux=True)(
            params, common.draw(k, batch.rows, config.batch_size)
        )
        over = (config.target_kl > 0) & (info["loss/approx_kl"] > config.target_kl)
        stopped = stopped | over
        stepped = apply_step(tx, config.policy_lr, grads, params, opt)
        params, opt = jax.tree.map(lambda old, new: jnp.where(stopped, old, new),
                                   (params, opt), stepped)  # fmt: skip
        return (params, opt, stopped), {**info, "ppo/policy_steps": (~stopped).astype(jnp.float32)}

    keys = jax.random.split(key, config.policy_steps)
    carry = (state.policy, state.policy_opt, jnp.zeros((), bool))
    (policy, opt, _), info = jax.lax.scan(one, carry, keys)
    steps = info.pop("ppo/policy_steps").sum()
    info = {**jax.tree.map(jnp.mean, info), "ppo/policy_steps": steps}
    return state.replace(policy=policy, policy_opt=opt), info


# --- the update ------------------------------------------------------------------------------


def update(env: Env, state: SftPpoState, assets: Assets = None) -> tuple[SftPpoState, dict]:
    """One iteration: collect, advantages, fit the critic, then (after the warm-up) the policy."""
    key, k_collect, k_critic, k_policy = jax.random.split(state.key, 4)
    episodes = collect(env, state, k_collect)
    batch = to_batch(state, episodes)
    state, value_loss = fit_critic(state, batch, k_critic)
    moved, info = improve_policy(env, state, batch, k_policy)
    warm = state.update_step >= state.config.warmup_updates
    state = jax.tree.map(lambda a, b: jnp.where(warm, a, b), moved, state)
    info = jax.tree.map(lambda x: jnp.where(warm, x, 0.0), info)
    state = state.replace(key=key, update_step=state.update_step + 1)
    return state, {**episode_metrics(episodes), **info, "loss/value": value_loss,
                   "ppo/action_std": jnp.mean(jnp.exp(state.policy["log_std"]))}  # fmt: skip


# --- metrics ---------------------------------------------------------------------------------


def episode_metrics(ep: Episodes) -> dict[str, jax.Array]:
    """The update's episodes: count, outcome return, success and steps per episode."""
    success = ep.success.astype(jnp.float32)
    return {
        EPISODES: jnp.float32(ep.success.shape[0]),
        "train/episode_return": ep.reward.sum(0).mean(),
        "train/episode_goal_reached": success.mean(),
        "ppo/episode_steps": ep.valid.sum(0).astype(jnp.float32).mean(),
    }


def metric_rules(env: Env) -> dict[str, MetricRule]:
    """Training and diagnostic metrics."""
    return {
        EPISODES: MetricRule("sum", "train episodes"),
        "train/episode_return": MetricRule("episode_mean", "train return"),
        "train/episode_goal_reached": MetricRule("episode_mean", "train success", True),
        "ppo/episode_steps": MetricRule(label="train episode steps"),
        "ppo/action_std": MetricRule(label="policy sigma"),
        "loss/policy": MetricRule(label="clipped surrogate"),
        "loss/entropy": MetricRule(label="entropy"),
        "loss/approx_kl": MetricRule(label="approx KL"),
        "loss/clip_frac": MetricRule(label="clipped share", percent=True),
        "ppo/policy_steps": MetricRule(label="policy steps taken (target_kl)"),
        "loss/value": MetricRule(label="value loss (MSE/2)"),
        common.SUCCESS_STEPS: MetricRule(label="steps to success", allow_nan=True),
    }


def diagnostics(state: SftPpoState, env: Env, assets: Assets, key: jax.Array) -> dict:
    """The deterministic policy's mean steps to success (`common.success_steps`)."""
    act = make_policy(policy_params(state), env, state.config)
    return common.success_steps(act, env, state.config.num_envs, state.config.episode_length, key)


def check_env(env: Env, config: Config) -> None:
    """RlxError for an env that does not report an episode's success."""
    common.require_success_outcome(env, "sft_ppo")


ALGORITHM = Algorithm(
    name="sft_ppo",
    description=DESCRIPTION,
    Config=Config,
    init=init,
    update=update,
    policy_params=policy_params,
    make_policy=make_policy,
    check_env=check_env,
    unit=Unit.EPISODES,
    metric_rules=metric_rules,
    assets={"pretrained": common.PRETRAINED},
    diagnostics=diagnostics,
)
