"""REINFORCE with a learned value baseline (Williams 1992), written outside rlx from its
public pieces: a jittable `rlx.algorithm.Algorithm` record, ``ALGORITHM``.

One `update` collects ``unroll_length`` steps from ``num_envs`` auto-resetting envs with the
Gaussian policy, computes the discounted return to the episode's end

    G_t = r_t + gamma (1 - done_t) G_{t+1} + gamma term'_t V(s'_t)

(``rlx.learn.returns.gae`` with lambda = 1; V bootstraps only where the rollout cuts an episode:
a time-out, or the rollout's last step), and takes one Adam step on

    L(theta, phi) = -mean_t[log pi_theta(a_t | s_t) A_t] + c_V mean_t[(V_phi(s_t) - G_t)^2] / 2
                    - c_H mean_t[H(pi_theta(. | s_t))],     A_t = standardise(G_t - V_phi(s_t)),

the policy gradient with the value as a baseline (A_t is held constant). Use it as
``--algo reinforce:ALGORITHM`` with this directory as the working directory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import flax.struct
import jax
import jax.numpy as jnp
import optax
from brax.envs.base import Env, State
from rlx.envs import observation_size, outcome_metrics, training_env
from rlx.envs.wrappers import episode_end

from rlx.algorithm import Algorithm
from rlx.config import Rollouts, hparam, require, require_budget, require_counts, static
from rlx.learn import normalizer
from rlx.learn.distributions import gaussian_entropy, gaussian_log_prob, gaussian_sample
from rlx.learn.networks import GaussianPolicy, ValueNetwork
from rlx.learn.optim import adam_step
from rlx.learn.returns import gae
from rlx.metrics import episode_summary


@flax.struct.dataclass
class Config(Rollouts):
    """REINFORCE settings: static fields fix the program, hyperparameters are vmappable."""

    total_steps: int = static(100_000, "Env steps per run (all envs together).")
    num_envs: int = static(32, "Parallel environments per run.")
    unroll_length: int = static(40, "Steps collected per env per update.")
    hidden: tuple[int, ...] = static((32, 32), "Policy and value MLP hidden widths.")
    episode_length: int = static(0, "Episode time limit in steps (0: the environment's default).")
    learning_rate: float = hparam(3e-3, "Adam step size.")
    gamma: float = hparam(0.95, "Discount factor.")
    value_coef: float = hparam(0.5, "Value-loss weight c_V.")
    entropy_coef: float = hparam(0.0, "Entropy-bonus weight c_H.")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        require_counts(self, ("total_steps", "num_envs", "unroll_length"), ("episode_length",))
        require_budget(self)
        require(
            self, learning_rate=(lambda v: v > 0, "> 0"), gamma=(lambda v: 0 <= v <= 1, "in [0, 1]")
        )


@flax.struct.dataclass
class ReinforceState:
    """The whole training state: a plain pytree."""

    config: Config
    params: dict[str, Any]
    opt_state: optax.OptState
    obs_stats: normalizer.RunningStats
    env_state: State
    key: jax.Array


class Rollout(NamedTuple):
    """One step of every env; [T, N, ...] once stacked by the scan."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    termination: jax.Array
    done: jax.Array
    final_obs: jax.Array
    episode_end: dict[str, jax.Array]


def networks(env: Env, config: Config) -> tuple[GaussianPolicy, ValueNetwork]:
    """The Gaussian policy pi_theta and the value baseline V_phi."""
    return GaussianPolicy(config.hidden, env.action_size), ValueNetwork(config.hidden)


def init(key: jax.Array, env: Env, config: Config, assets: Any = None) -> ReinforceState:
    """Parameters, Adam moments, empty observation statistics, a batch of reset envs."""
    policy_net, value_net = networks(env, config)
    k_pi, k_v, k_env, k_next = jax.random.split(key, 4)
    dummy = jnp.zeros((observation_size(env),), jnp.float32)
    params = {"policy": policy_net.init(k_pi, dummy), "value": value_net.init(k_v, dummy)}
    env_state = training_env(env, config.episode_length).reset(
        jax.random.split(k_env, config.num_envs)
    )
    return ReinforceState(config, params, optax.scale_by_adam().init(params),
                          normalizer.init(dummy.shape[0]), env_state, k_next)  # fmt: skip


def policy_params(state: ReinforceState) -> dict[str, Any]:
    """What the policy needs: its network and the observation statistics."""
    return {"policy": state.params["policy"], "obs_stats": normalizer.as_dict(state.obs_stats)}


def make_policy(params: dict[str, Any], env: Env, config: Config) -> Callable[..., jax.Array]:
    """act(obs, key, deterministic) -> action in [-1, 1] (the mean when deterministic)."""
    policy_net, _ = networks(env, config)
    stats = normalizer.from_dict(params["obs_stats"])

    def act(obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        mean, log_std = policy_net.apply(params["policy"], normalizer.normalize(stats, obs))
        action = mean if deterministic else gaussian_sample(key, mean, log_std)
        return jnp.clip(action, -1.0, 1.0)

    return act


def rollout(env: Env, state: ReinforceState, key: jax.Array) -> tuple[State, Rollout]:
    """unroll_length steps of every env under the current (stochastic) policy."""
    policy_net, _ = networks(env, state.config)
    tenv, outcomes = training_env(env, state.config.episode_length), outcome_metrics(env)

    def env_step(env_state: State, step_key: jax.Array) -> tuple[State, Rollout]:
        obs = normalizer.normalize(state.obs_stats, env_state.obs)
        action = gaussian_sample(step_key, *policy_net.apply(state.params["policy"], obs))
        nxt = tenv.step(env_state, jnp.clip(action, -1.0, 1.0))
        termination = nxt.done * (1.0 - nxt.info["truncation"])
        return nxt, Rollout(env_state.obs, action, nxt.reward, termination, nxt.done,
                            nxt.info["final_obs"], episode_end(nxt, outcomes))  # fmt: skip

    return jax.lax.scan(
        env_step, state.env_state, jax.random.split(key, state.config.unroll_length)
    )


def loss(params: dict[str, Any], env: Env, config: Config, obs: jax.Array, traj: Rollout):
    """L(theta, phi) of the module docstring on normalised [T, N, ...] observations."""
    policy_net, value_net = networks(env, config)
    values = value_net.apply(params["value"], obs)
    next_values = jax.lax.stop_gradient(value_net.apply(params["value"], traj.final_obs))
    _, returns = gae(traj.reward, jax.lax.stop_gradient(values), next_values,
                     traj.termination, traj.done, config.gamma, 1.0)  # fmt: skip
    chex.assert_equal_shape([returns, values, traj.reward])
    adv = jax.lax.stop_gradient(returns - values)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    mean, log_std = policy_net.apply(params["policy"], obs)
    log_prob = gaussian_log_prob(traj.action, mean, log_std)
    chex.assert_equal_shape([log_prob, adv])
    policy_loss = -jnp.mean(log_prob * adv)
    value_loss = 0.5 * jnp.mean((values - returns) ** 2)
    entropy = jnp.mean(gaussian_entropy(log_std))
    total = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
    return total, {"loss/policy": policy_loss, "loss/value": value_loss, "loss/entropy": entropy}


def update(env: Env, state: ReinforceState, assets: Any = None):
    """One iteration: rollout, returns and loss, one Adam step, normaliser update."""
    config = state.config
    key, k_roll = jax.random.split(state.key)
    env_state, traj = rollout(env, state, k_roll)
    chex.assert_shape(traj.reward, (config.unroll_length, config.num_envs))
    norm = lambda x: normalizer.normalize(state.obs_stats, x)  # noqa: E731
    traj = traj._replace(final_obs=norm(traj.final_obs))
    grads, info = jax.grad(loss, has_aux=True)(state.params, env, config, norm(traj.obs), traj)
    params, opt_state = adam_step(state.params, grads, state.opt_state, config.learning_rate)
    info.update(episode_summary(traj.done, traj.episode_end))
    obs_stats = normalizer.update(state.obs_stats, traj.obs)
    return state.replace(params=params, opt_state=opt_state, obs_stats=obs_stats,
                         env_state=env_state, key=key), info  # fmt: skip


ALGORITHM = Algorithm(
    name="reinforce",
    description="REINFORCE with a learned value baseline (an example from outside rlx).",
    Config=Config,
    init=init,
    update=update,
    policy_params=policy_params,
    make_policy=make_policy,
)
