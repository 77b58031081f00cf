"""Proximal Policy Optimisation (Schulman et al. 2017) for continuous actions, whole-loop jittable.

One `update` = collect ``unroll_length`` steps from ``num_envs`` auto-resetting envs with the
current Gaussian policy, compute GAE advantages (bootstrapping on time-outs), then run
``num_epochs`` passes of ``num_minibatches`` clipped-surrogate minibatch steps, and finally
fold the rollout's observations into the running normaliser. The nesting of the scan bodies
below *is* the algorithm::

    update -> rollout(_env_step)                       # collect [T, N] transitions
           -> learner_batch(advantages -> gae)         # GAE, flattened to [T * N]
           -> optimise(_epoch -> minibatch_step -> loss)  # clipped-surrogate Adam steps
           -> finish                                   # normaliser, counters, metrics

Every piece is a public, documented function (`networks`, `optimizer`, `normalize_obs`,
`rollout`, `advantages`, `learner_batch`, `loss`, `optimise`, `finish`): a variant of PPO
composes them and replaces only what changes (`rlx.algos.factorized.factorized_pg` replaces
the advantages and the loss).
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
from rlx.data.assets import Assets
from rlx.errors import RlxError
from rlx.learn import normalizer
from rlx.learn.distributions import gaussian_entropy, gaussian_log_prob, gaussian_sample
from rlx.learn.networks import GaussianPolicy, ValueNetwork
from rlx.learn.returns import gae
from rlx.metrics import episode_summary

DESCRIPTION = "PPO, continuous actions: clipped surrogate, GAE with time-out bootstrap, obs norm."


@flax.struct.dataclass
class Config(Rollouts):
    """PPO settings. Static fields fix the program; hyperparameters are vmappable leaves."""

    total_steps: int = static(300_000, "Env steps per run (all envs together).")
    num_envs: int = static(100, "Parallel environments per run.")
    unroll_length: int = static(30, "Steps collected per env per update.")
    num_minibatches: int = static(6, "Minibatches per epoch (must divide num_envs*unroll_length).")
    num_epochs: int = static(10, "Passes over each rollout batch.")
    policy_hidden: tuple[int, ...] = static((64, 64), "Policy MLP hidden widths.")
    value_hidden: tuple[int, ...] = static((64, 64), "Value MLP hidden widths.")
    activation: str = static("tanh", "Hidden activation: tanh, relu, silu or elu.")
    normalize_observations: bool = static(True, "Running mean/std observation normalisation.")
    anneal_lr: bool = static(True, "Anneal the learning rate linearly to 0 over the budget.")
    clip_value: bool = static(False, "Clip the value update to +-clip_eps around the old value.")
    episode_length: int = static(0, "Episode time limit in steps (0: the environment's default).")
    learning_rate: float = hparam(1e-3, "Adam step size (initial value when annealed).")
    gamma: float = hparam(0.99, "Discount factor.")
    gae_lambda: float = hparam(0.95, "GAE lambda.")
    clip_eps: float = hparam(0.2, "Surrogate clip range epsilon.")
    value_coef: float = hparam(0.5, "Value-loss weight.")
    entropy_coef: float = hparam(0.0, "Entropy-bonus weight.")
    max_grad_norm: float = hparam(0.5, "Global gradient-norm clip.")
    reward_scaling: float = hparam(0.1, "Rewards are multiplied by this before GAE.")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        require_counts(
            self,
            ("total_steps", "num_envs", "unroll_length", "num_minibatches", "num_epochs"),
            ("episode_length",),
        )
        if self.steps_per_update % self.num_minibatches:
            raise RlxError(
                f"num_minibatches={self.num_minibatches} must divide num_envs*unroll_length="
                f"{self.steps_per_update}."
            )
        require_budget(self)
        if self.activation not in ("tanh", "relu", "silu", "elu"):
            raise RlxError(f"activation must be tanh, relu, silu or elu, got {self.activation!r}.")
        if not all(w > 0 for w in (*self.policy_hidden, *self.value_hidden)):
            raise RlxError("hidden layer widths must be positive integers.")
        require(
            self,
            learning_rate=(lambda v: v > 0, "> 0"),
            gamma=(lambda v: 0 <= v <= 1, "in [0, 1]"),
            gae_lambda=(lambda v: 0 <= v <= 1, "in [0, 1]"),
            clip_eps=(lambda v: v > 0, "> 0"),
            value_coef=(lambda v: v >= 0, ">= 0"),
            entropy_coef=(lambda v: v >= 0, ">= 0"),
            max_grad_norm=(lambda v: v > 0, "> 0"),
            reward_scaling=(lambda v: v > 0, "> 0"),
        )


@flax.struct.dataclass
class PPOState:
    """Everything a run needs to continue: a plain pytree."""

    config: Config
    params: dict[str, Any]
    opt_state: optax.OptState
    obs_stats: normalizer.RunningStats
    env_state: State
    key: jax.Array
    update_step: jax.Array


class Transition(NamedTuple):
    """One rollout step for every env ([T, N, ...] once stacked)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    termination: jax.Array
    done: jax.Array
    final_obs: jax.Array
    steps: jax.Array
    """The episode step t at which ``obs`` was observed (0 at a reset)."""
    episode_end: dict[str, jax.Array]
    """The return and each outcome (`rlx.envs.outcome_metrics`) of the episode that ended at
    this step (meaningful where ``done``)."""


class Batch(NamedTuple):
    """Flattened, normalised training batch."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


def networks(env: Env, config: Config) -> tuple[GaussianPolicy, ValueNetwork]:
    """The policy pi_theta(a|s) = N(mu_theta(s), diag(exp(2 log_std_theta(s)))) and the value
    network V_phi(s), both MLPs on the (normalised) observation."""
    return (
        GaussianPolicy(config.policy_hidden, env.action_size, config.activation),
        ValueNetwork(config.value_hidden, config.activation),
    )


def optimizer(config: Config) -> optax.GradientTransformation:
    """Gradient clipping to ``max_grad_norm`` and Adam moments (eps 1e-5), without the step
    size: the (annealed) step size is applied by `apply_step`, so it stays a traced value."""
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.scale_by_adam(eps=1e-5)
    )


def normalize_obs(state: PPOState, obs: jax.Array) -> jax.Array:
    """(obs - mean) / std under the running statistics, clipped to [-10, 10]
    (`rlx.learn.normalizer.normalize`) with ``normalize_observations``; else obs unchanged."""
    if state.config.normalize_observations:
        return normalizer.normalize(state.obs_stats, obs)
    return obs


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> PPOState:
    """Initial parameters, optimiser state, normaliser and a batch of reset environments."""
    policy_net, value_net = networks(env, config)
    k_policy, k_value, k_env, k_next = jax.random.split(key, 4)
    obs_size = observation_size(env)
    dummy = jnp.zeros((obs_size,), jnp.float32)
    params = {"policy": policy_net.init(k_policy, dummy), "value": value_net.init(k_value, dummy)}
    env_state = training_env(env, config.episode_length).reset(
        jax.random.split(k_env, config.num_envs)
    )
    return PPOState(
        config=config,
        params=params,
        opt_state=optimizer(config).init(params),
        obs_stats=normalizer.init(obs_size),
        env_state=env_state,
        key=k_next,
        update_step=jnp.zeros((), jnp.int32),
    )


def policy_params(state: PPOState) -> dict[str, Any]:
    """What the trained policy needs: the policy network's parameters and, with
    ``normalize_observations``, the observation statistics (`normalizer.as_dict`)."""
    params = {"policy": state.params["policy"]}
    if state.config.normalize_observations:
        params["obs_stats"] = normalizer.as_dict(state.obs_stats)
    return params


def make_policy(params: dict[str, Any], env: Env, config: Config) -> Callable[..., jax.Array]:
    """act(obs, key, deterministic=False) -> action in [-1, 1]: the Gaussian mean if deterministic."""
    policy_net, _ = networks(env, config)

    def act(obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        if config.normalize_observations:
            obs = normalizer.normalize(normalizer.from_dict(params["obs_stats"]), obs)
        mean, log_std = policy_net.apply(params["policy"], obs)
        action = mean if deterministic else gaussian_sample(key, mean, log_std)
        return jnp.clip(action, -1.0, 1.0)

    return act


def rollout(env: Env, state: PPOState, key: jax.Array) -> tuple[State, Transition]:
    """``unroll_length`` steps of every env with a_t ~ pi_theta(.|norm(s_t)) (the env gets
    clip(a_t, -1, 1); the transition keeps the unclipped a_t and log pi_theta(a_t|s_t)), from
    ``state.env_state`` with auto-reset. Returns the last env state and the `Transition`s,
    leaves [unroll_length, num_envs, ...]."""
    policy_net, _ = networks(env, state.config)
    tenv = training_env(env, state.config.episode_length)
    outcomes = outcome_metrics(env)

    def _env_step(env_state: State, step_key: jax.Array) -> tuple[State, Transition]:
        mean, log_std = policy_net.apply(
            state.params["policy"], normalize_obs(state, env_state.obs)
        )
        action = gaussian_sample(step_key, mean, log_std)
        nxt = tenv.step(env_state, jnp.clip(action, -1.0, 1.0))
        truncation = nxt.info["truncation"]
        return nxt, Transition(
            obs=env_state.obs,
            action=action,
            log_prob=gaussian_log_prob(action, mean, log_std),
            reward=nxt.reward,
            termination=nxt.done * (1.0 - truncation),
            done=nxt.done,
            final_obs=nxt.info["final_obs"],
            steps=jnp.where(env_state.done > 0, 0.0, env_state.info["steps"]),
            episode_end=episode_end(nxt, outcomes),
        )

    keys = jax.random.split(key, state.config.unroll_length)
    return jax.lax.scan(_env_step, state.env_state, keys)


def loss(params: dict[str, Any], env: Env, config: Config, mb: Batch) -> tuple[jax.Array, dict]:
    """PPO's loss on a minibatch and its parts (``loss/...`` metrics)::

        L = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)] + c_v L_V - c_H H[pi_theta],
        rho = pi_theta(a|s) / pi_old(a|s),   L_V = 1/2 E[(V_phi(s) - target)^2]

    (A standardised over the minibatch, `clipped_surrogate`; with ``clip_value`` the value
    error is max((V - target)^2, (V_old + clip(V - V_old, -eps, eps) - target)^2))."""
    policy_net, value_net = networks(env, config)
    mean, log_std = policy_net.apply(params["policy"], mb.obs)
    policy_loss, ratio_info = clipped_surrogate(
        gaussian_log_prob(mb.action, mean, log_std), mb.log_prob, mb.advantage, config.clip_eps
    )
    value = value_net.apply(params["value"], mb.obs)
    value_err = (value - mb.target) ** 2
    if config.clip_value:
        value_clipped = mb.value + jnp.clip(value - mb.value, -config.clip_eps, config.clip_eps)
        value_err = jnp.maximum(value_err, (value_clipped - mb.target) ** 2)
    value_loss = 0.5 * jnp.mean(value_err)
    entropy = jnp.mean(gaussian_entropy(log_std))
    total = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
    return total, {
        "loss/policy": policy_loss,
        "loss/value": value_loss,
        "loss/entropy": entropy,
        **ratio_info,
    }


def clipped_surrogate(
    log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array, clip_eps: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """-mean(min(rho A, clip(rho, 1 - eps, 1 + eps) A)) with rho = exp(log_prob - old_log_prob)
    and A standardised over the minibatch; returns it with approx KL and the clipped share."""
    chex.assert_equal_shape([log_prob, old_log_prob, advantage])
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    adv = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))
    return loss, {
        "loss/approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        "loss/clip_frac": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
    }


def advantages(env: Env, state: PPOState, traj: Transition) -> tuple[jax.Array, ...]:
    """(normalised obs, V(s_t), GAE advantages, value targets), each [T, N, ...]: with the
    scaled reward r_t = reward_scaling * reward and V(s'_t) at the observation reached before
    any auto-reset (`rlx.learn.returns.gae`)::

        delta_t = r_t + gamma (1 - term_t) V(s'_t) - V(s_t)
        A_t     = delta_t + gamma lambda (1 - done_t) A_{t+1},   target_t = A_t + V(s_t)

    so a time-out bootstraps from V(s'_t) and a termination does not."""
    config = state.config
    _, value_net = networks(env, config)
    obs = normalize_obs(state, traj.obs)
    values = value_net.apply(state.params["value"], obs)
    next_values = value_net.apply(state.params["value"], normalize_obs(state, traj.final_obs))
    adv, targets = gae(
        traj.reward * config.reward_scaling,
        values,
        next_values,
        traj.termination,
        traj.done,
        config.gamma,
        config.gae_lambda,
    )
    return obs, values, adv, targets


def learner_batch(env: Env, state: PPOState, traj: Transition) -> Batch:
    """The learner's input for a rollout: `advantages` and the rollout's actions and
    log-probabilities as a `Batch` with leaves flattened to [unroll_length * num_envs, ...]."""
    obs, values, adv, targets = advantages(env, state, traj)
    batch = Batch(obs, traj.action, traj.log_prob, values, adv, targets)
    return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), batch)


MinibatchStep = Callable[[tuple[Any, optax.OptState], Any], tuple[tuple[Any, optax.OptState], dict]]


def minibatch_step(
    loss: Callable[[Any, Any], tuple[jax.Array, dict]],
    tx: optax.GradientTransformation,
    lr: jax.Array | float,
) -> MinibatchStep:
    """The learner's scan body: one step on one minibatch,
    g = grad_theta L(theta, mb), (u, s') = tx(g, s, theta), theta' = theta - lr * u.

    Maps ((theta, s), mb) to ((theta', s'), the loss's info dict).
    """
    grad_fn = jax.grad(loss, has_aux=True)

    def step(carry: tuple[Any, optax.OptState], mb: Any) -> tuple[tuple[Any, optax.OptState], dict]:
        grads, info = grad_fn(carry[0], mb)
        return apply_step(tx, lr, grads, *carry), info

    return step


def apply_step(
    tx: optax.GradientTransformation,
    lr: jax.Array | float,
    grads: Any,
    params: Any,
    opt_state: optax.OptState,
) -> tuple[Any, optax.OptState]:
    """(theta - lr * u, s'), with (u, s') = tx(g, s, theta): one optimiser step."""
    steps, opt_state = tx.update(grads, opt_state, params)
    return jax.tree.map(lambda p, s: p - lr * s, params, steps), opt_state


def optimise(
    state: PPOState, batch: Any, loss: Callable[[Any, Any], tuple[jax.Array, dict]], key: jax.Array
) -> tuple[Any, optax.OptState, dict[str, jax.Array], jax.Array]:
    """num_epochs shuffled passes of num_minibatches Adam steps on ``loss(params, minibatch)``
    over `batch` (leaves [steps_per_update, ...]), with the step size
    lr_k = learning_rate * (1 - k / num_updates) at update k under ``anneal_lr`` (else
    learning_rate), each step theta <- theta - lr_k * Adam(clip(grad L)) (`minibatch_step`).

    Returns (params, optimiser state, per-step loss infos stacked [epochs, minibatches],
    step size). Extensions of PPO call this with their own loss and batch.
    """
    config = state.config
    frac = 1.0 - state.update_step.astype(jnp.float32) / config.num_updates
    lr = config.learning_rate * (frac if config.anneal_lr else 1.0)
    _minibatch = minibatch_step(loss, optimizer(config), lr)

    def _epoch(carry, epoch_key: jax.Array):
        perm = jax.random.permutation(epoch_key, config.steps_per_update)
        shuffled = jax.tree.map(
            lambda x: x[perm].reshape((config.num_minibatches, -1, *x.shape[1:])), batch
        )
        return jax.lax.scan(_minibatch, carry, shuffled)

    (params, opt_state), info = jax.lax.scan(
        _epoch, (state.params, state.opt_state), jax.random.split(key, config.num_epochs)
    )
    return params, opt_state, info, jnp.asarray(lr, jnp.float32)


def finish(
    state: PPOState,
    env_state: State,
    traj: Transition,
    params: Any,
    opt_state: optax.OptState,
    info: dict[str, jax.Array],
    lr: jax.Array,
    key: jax.Array,
) -> tuple[PPOState, dict[str, jax.Array]]:
    """The next state (normaliser updated with the rollout) and the iteration's metrics: the
    mean losses, the step size and the finished episodes' count, return and outcomes
    (`rlx.metrics.episode_summary`, as every env-stepping algorithm reports them)."""
    metrics = {k: v.mean() for k, v in info.items()}
    metrics.update(episode_summary(traj.done, traj.episode_end))
    metrics["train/learning_rate"] = lr
    new_state = state.replace(
        params=params,
        opt_state=opt_state,
        obs_stats=normalizer.update(state.obs_stats, traj.obs),
        env_state=env_state,
        key=key,
        update_step=state.update_step + 1,
    )
    return new_state, metrics


def update(
    env: Env, state: PPOState, assets: Assets = None
) -> tuple[PPOState, dict[str, jax.Array]]:
    """One PPO iteration: `rollout`, `learner_batch` (GAE advantages), `optimise` (num_epochs x
    num_minibatches steps on `loss`), `finish` (normaliser, counters, metrics)."""
    config = state.config
    key, k_roll, k_perm = jax.random.split(state.key, 3)
    env_state, traj = rollout(env, state, k_roll)
    chex.assert_shape(traj.reward, (config.unroll_length, config.num_envs))
    flat = learner_batch(env, state, traj)
    params, opt_state, info, lr = optimise(
        state, flat, lambda p, mb: loss(p, env, config, mb), k_perm
    )
    return finish(state, env_state, traj, params, opt_state, info, lr, key)


ALGORITHM = Algorithm(
    name="ppo",
    description=DESCRIPTION,
    Config=Config,
    init=init,
    update=update,
    policy_params=policy_params,
    make_policy=make_policy,
)
