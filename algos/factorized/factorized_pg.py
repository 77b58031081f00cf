"""Action-dependent factorized baselines (Wu et al., ICLR 2018), written as an extension of PPO.

This is the template for extending an algorithm: reuse its `Config` (subclass), `init`,
rollout, advantage estimation and optimiser loop (`ppo.advantages`, `ppo.optimise`,
`ppo.finish`) and replace only what changes, here the advantage and the surrogate.

With a factorised policy pi(a|s) = prod_i pi_i(a_i|s) (PPO's diagonal Gaussian), every action
dimension i gets its own advantage against a baseline that may depend on the *other*
dimensions' actions::

    A_t^i = G_t - b_i(s_t, a_{t,-i}),           G_t = A_t^GAE + V(s_t)   (the lambda-return)
    L     = -mean_t sum_i min(rho_t^i A_t^i, clip(rho_t^i, 1 - eps, 1 + eps) A_t^i),
    rho_t^i = pi_i(a_ti|s_t) / pi_i,old(a_ti|s_t)

whose gradient at theta_old is the factorized estimator ``g = mean_t sum_i grad log
pi_i(a_ti|s_t) A_t^i``. Since a_i is independent of a_{-i} given s,
E[grad log pi_i(a_i|s) b_i(s, a_{-i})] = 0: the estimator is unbiased for every baseline.

Baselines (``baseline``), all m of them from one batched pass:

- ``state``: b_i = V(s) for every i (PPO's advantage, with per-dimension ratios);
- ``regression``: b_i = V(s) + f_i(s, a_{-i}), f one leave-one-out network regressed on G - V;
- ``marginal``: b_i = V(s) + (1/K) sum_k Q(s, (a_{-i}, a_i^k)), a_i^k ~ pi_i(.|s), with Q
  regressed on G - V (an advantage-like residual);
- ``mean_action``: b_i = V(s) + Q(s, (a_{-i}, mu_i(s)));
- ``linear``: the authors' own baseline, one ridge regression of G per dimension on linear
  features of (o, t, a_{-i}) (`rlx.algos.factorized.linear_baseline`), fitted in closed form to the *previous*
  batch (the fit is refreshed after each batch's advantages are computed), its ridge penalty
  chosen from ``linear_ridge_decades`` decades by the fit's error on held-out envs;
- ``oracle``: b_i = E_{a_i ~ pi_i}[Q(s, a)] exactly, from the environment (``marginal_q``),
  where it can give it (``exact_marginal_q``: one-step target matching, where Q = r): the
  lower bound the learned baselines are measured against.

The learned part models only the residual G - V(s): with Q fitted to G itself, its misfit of
the (large) state-dependent part of G would enter every dimension's advantage; written on top
of V, that part is V's misfit alone, as with the state baseline, and b_i still does not
depend on a_i. (V is the one from the rollout, held fixed while the residual nets are fitted.)

The first layer of Q and of the leave-one-out network is linear in the action, so replacing
a_i by x changes its pre-activation by ``W_a[i] (x - a_i)``: the m substituted evaluations
cost m small MLP tails, not m full forward passes. The networks are fitted to the batch's G
during the epochs, after its advantages were computed (no same-batch leakage); the linear
fit likewise only after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos import ppo
from rlx.algos.factorized import linear_baseline
from rlx.envs import episode_length, observation_size, training_env

from rlx.algorithm import Algorithm
from rlx.assets import Assets
from rlx.config import hparam, require, static
from rlx.errors import RlxError
from rlx.learn.distributions import gaussian_sample
from rlx.learn.networks import ACTIVATIONS

DESCRIPTION = "PPO with per-action-dimension baselines b_i(s, a_-i) (Wu et al. 2018)."
BASELINES = ("state", "regression", "marginal", "mean_action", "linear", "oracle")
CHUNK_FLOATS = 1 << 22  # activations per chunk when evaluating the m baselines (16 MiB)


@flax.struct.dataclass
class Config(ppo.Config):
    """PPO's settings plus the baseline variant and its networks."""

    baseline: str = static(
        "marginal", "Baseline: state, regression, marginal, mean_action, linear or oracle."
    )
    action_samples: int = static(4, "Monte-Carlo samples K of a_i for the marginal baseline.")
    critic_hidden: tuple[int, ...] = static((64, 64), "Q / leave-one-out network hidden widths.")
    fit_all_baselines: bool = static(False, "Fit Q and the regression net whatever the variant.")
    baseline_coef: float = hparam(0.5, "Weight of the Q / leave-one-out regression losses.")
    linear_ridge: float = hparam(
        1e-2, "Smallest ridge penalty of the linear baselines, relative to max(N, features)."
    )
    linear_ridge_decades: int = static(
        5, "Linear baselines' penalty: linear_ridge x 10^k, k < this, chosen on held-out envs."
    )

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        super().validate()
        if self.baseline not in BASELINES:
            raise RlxError(
                f"baseline must be one of {', '.join(BASELINES)}; got {self.baseline!r}."
            )
        if self.action_samples <= 0:
            raise RlxError(f"action_samples must be positive, got {self.action_samples}.")
        if not self.critic_hidden or not all(w > 0 for w in self.critic_hidden):
            raise RlxError(f"critic_hidden widths must be positive, got {self.critic_hidden}.")
        if not 1 <= self.linear_ridge_decades <= 12:
            raise RlxError(
                f"linear_ridge_decades must be in 1..12, got {self.linear_ridge_decades}."
            )
        require(
            self,
            baseline_coef=(lambda v: v >= 0, ">= 0"),
            linear_ridge=(lambda v: v > 0, "> 0"),
        )

    @property
    def fits_q(self) -> bool:
        """True when the action-value network Q is trained."""
        return self.fit_all_baselines or self.baseline in ("marginal", "mean_action")

    @property
    def fits_regression(self) -> bool:
        """True when the leave-one-out regression network is trained."""
        return self.fit_all_baselines or self.baseline == "regression"

    @property
    def fits_linear(self) -> bool:
        """True when the linear-feature baselines are refitted after each batch."""
        return self.fit_all_baselines or self.baseline == "linear"


@flax.struct.dataclass
class FPGState(ppo.PPOState):
    """PPO's state plus the linear baselines fitted to the previous batch."""

    linear: linear_baseline.LinearFit


class Inputs(NamedTuple):
    """What the baselines of a flat batch of N samples are computed from."""

    obs: jax.Array  # [N, o] normalised, as the networks see it
    raw_obs: jax.Array  # [N, o] as the env emitted it (the linear features)
    steps: jax.Array  # [N] episode step t
    action: jax.Array  # [N, m]
    mean: jax.Array  # [N, m] policy mean
    log_std: jax.Array  # [N, m]
    value: jax.Array  # [N] V(s)


class FactorCritic(nn.Module):
    """An MLP on (s, a) whose first layer is linear in a.

    ``__call__(obs, action)``: f(s, a), shape [...];
    ``__call__(obs, action, subs)`` with subs [..., m, K]: f(s, (a_{-i}, subs[i, k])) for every
    dimension i and sample k, shape [..., m, K];
    with ``leave_one_out``: f_i(s, a_{-i}) (a_i removed, a learned per-dimension offset added),
    shape [..., m].
    """

    hidden: tuple[int, ...]
    activation: str = "tanh"
    leave_one_out: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array, subs: jax.Array | None = None):
        m, width = action.shape[-1], self.hidden[0]
        w_a = self.param("w_a", nn.initializers.lecun_normal(), (m, width))
        pre = nn.Dense(width, name="obs_in")(obs) + action @ w_a
        if self.leave_one_out:
            offset = self.param("dim_offset", nn.initializers.zeros, (m, width))
            pre = pre[..., None, :] - action[..., :, None] * w_a + offset
        elif subs is not None:
            delta = (subs - action[..., :, None])[..., None]  # [..., m, K, 1]
            pre = pre[..., None, None, :] + delta * w_a[:, None, :]
        act = ACTIVATIONS[self.activation]
        h = act(pre)
        for size in self.hidden[1:]:
            h = act(nn.Dense(size)(h))
        return nn.Dense(1)(h)[..., 0]


def _critics(config: Config) -> tuple[FactorCritic, FactorCritic]:
    return (
        FactorCritic(config.critic_hidden, config.activation),
        FactorCritic(config.critic_hidden, config.activation, leave_one_out=True),
    )


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> FPGState:
    """PPO's initial state with the Q and leave-one-out networks added to the parameters and
    an empty linear fit (its baselines are 0 until the first batch is fitted)."""
    k_ppo, k_q, k_loo = jax.random.split(key, 3)
    state = ppo.init(k_ppo, env, config, assets)
    obs = jnp.zeros((observation_size(env),))
    act = jnp.zeros((env.action_size,))
    q_net, loo_net = _critics(config)
    params = {**state.params, "q": q_net.init(k_q, obs, act), "loo": loo_net.init(k_loo, obs, act)}
    fields = {f: getattr(state, f) for f in state.__dataclass_fields__}
    fields.update(params=params, opt_state=ppo._optimizer(config).init(params))
    empty = linear_baseline.empty(config.steps_per_update, observation_size(env), env.action_size)
    return FPGState(**fields, linear=empty)


policy_params, make_policy = ppo.policy_params, ppo.make_policy


def has_oracle(env: Env) -> bool:
    """True when `env` gives the exact E_{a_i}[Q(s, a)] (``marginal_q``)."""
    return bool(getattr(env, "exact_marginal_q", False))


def available(env: Env) -> tuple[str, ...]:
    """The baseline variants `env` supports (the oracle only where it is exact)."""
    return tuple(v for v in BASELINES if v != "oracle" or has_oracle(env))


def check_env(env: Env, config: Config) -> None:
    """Action-dependent baselines need at least 2 action dimensions (b_i sees a_{-i}); the
    oracle needs an environment that knows E_{a_i}[Q]."""
    if config.baseline == "oracle" and not has_oracle(env):
        raise RlxError(
            f"baseline='oracle' needs an environment that gives the exact E_a_i[Q(s, a)]; "
            f"{type(env).__name__} does not. The target_matching_bandit_m* environments do."
        )
    if config.baseline != "state" and env.action_size < 2:
        raise RlxError(
            f"baseline={config.baseline!r} needs an action dimension of at least 2 (b_i depends "
            f"on the other dimensions' actions); {type(env).__name__} has {env.action_size}. "
            "Use baseline='state' or an environment with more action dimensions."
        )


def _chunked(fn: Callable, xs: tuple, floats_per_item: int) -> jax.Array:
    """``vmap(fn)`` over the leading axis of xs, evaluated in chunks of bounded memory."""
    n = jax.tree.leaves(xs)[0].shape[0]
    size = int(max(1, min(n, CHUNK_FLOATS // max(1, floats_per_item))))
    return jax.lax.map(lambda x: fn(*x), xs, batch_size=size)


def baselines(env: Env, state: FPGState, variant: str, x: Inputs, key: jax.Array) -> jax.Array:
    """b_i(s_n, a_{n,-i}) for every sample n and dimension i of a flat batch: [N, m].

    The learned networks model the residual of the state baseline: b_i = V(s) + f_i, with f
    from the Q network (regressed on G - V(s)) or the leave-one-out network, so a misfit of
    the state-dependent part of G is V's alone and f carries only the action dependence. The
    linear baselines model G whole, as the authors' do.
    """
    config, params = state.config, state.params
    n, m = x.action.shape
    chex.assert_shape([x.mean, x.log_std], (n, m))
    chex.assert_shape([x.value, x.steps], (n,))
    q_net, loo_net = _critics(config)
    width = max(config.critic_hidden)
    obs, action, value = x.obs, x.action, x.value
    if variant == "state":
        return jnp.broadcast_to(value[:, None], (n, m))
    if variant == "linear":
        return linear_baseline.predict(state.linear, x.raw_obs, action, x.steps)
    if variant == "oracle":
        check_env(env, config.replace(baseline="oracle"))  # refused where it is not exact
        q = env.marginal_q(x.raw_obs, action, x.mean, jnp.exp(x.log_std))
        return config.reward_scaling * q
    if variant == "regression":
        fn = lambda o, a: loo_net.apply(params["loo"], o, a)  # noqa: E731
        return value[:, None] + _chunked(fn, (obs, action), m * width)
    if variant == "mean_action":
        fn = lambda o, a, mu: q_net.apply(params["q"], o, a, mu[:, None])[..., 0]  # noqa: E731
        return value[:, None] + _chunked(fn, (obs, action, x.mean), m * width)
    if variant == "marginal":
        k = config.action_samples
        samples = gaussian_sample(
            key, jnp.broadcast_to(x.mean[..., None], (n, m, k)), x.log_std[..., None]
        )
        fn = lambda o, a, s: q_net.apply(params["q"], o, a, s).mean(-1)  # noqa: E731
        return value[:, None] + _chunked(fn, (obs, action, samples), m * k * width)
    raise RlxError(f"baseline must be one of {', '.join(BASELINES)}; got {variant!r}.")


class Batch(NamedTuple):
    """Flattened training batch with per-dimension advantages."""

    inputs: Inputs
    log_prob_i: jax.Array  # [N, m] per-dimension log pi_old(a_i|s)
    advantage_i: jax.Array  # [N, m]
    target: jax.Array  # G, the lambda-return


def per_dim_log_prob(action: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log pi_i(a_i|s) for each dimension of a diagonal Gaussian, shape [..., m]."""
    z = (action - mean) * jnp.exp(-log_std)
    return -0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)


def _loss(params: dict, env: Env, config: Config, mb: Batch) -> tuple[jax.Array, dict]:
    """Per-dimension clipped surrogate + value, Q and leave-one-out regressions - entropy."""
    policy_net, value_net = ppo._networks(env, config)
    q_net, loo_net = _critics(config)
    x = mb.inputs
    mean, log_std = policy_net.apply(params["policy"], x.obs)
    log_ratio = per_dim_log_prob(x.action, mean, log_std) - mb.log_prob_i
    ratio = jnp.exp(log_ratio)
    adv = (mb.advantage_i - mb.advantage_i.mean()) / (mb.advantage_i.std() + 1e-8)
    clipped = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
    policy_loss = -jnp.mean(jnp.sum(jnp.minimum(ratio * adv, clipped * adv), axis=-1))
    value_loss = 0.5 * jnp.mean((value_net.apply(params["value"], x.obs) - mb.target) ** 2)
    baseline_loss = jnp.zeros(())
    residual = mb.target - x.value  # G - V_old(s): what the action-dependent nets model
    if config.fits_q:
        q = q_net.apply(params["q"], x.obs, x.action)
        baseline_loss += 0.5 * jnp.mean((q - residual) ** 2)
    if config.fits_regression:
        b = loo_net.apply(params["loo"], x.obs, x.action)
        baseline_loss += 0.5 * jnp.mean((b - residual[:, None]) ** 2)
    entropy = jnp.mean(jnp.sum(log_std + 0.5 * (jnp.log(2.0 * jnp.pi) + 1.0), axis=-1))
    total = (
        policy_loss
        + config.value_coef * value_loss
        + config.baseline_coef * baseline_loss
        - config.entropy_coef * entropy
    )
    return total, {
        "loss/policy": policy_loss,
        "loss/value": value_loss,
        "loss/baseline": baseline_loss,
        "loss/entropy": entropy,
        "loss/approx_kl": jnp.mean(jnp.sum((ratio - 1.0) - log_ratio, axis=-1)),
    }


def batch_inputs(env: Env, state: FPGState, traj: ppo.Transition) -> tuple[Inputs, jax.Array]:
    """The flat baseline inputs of a rollout and its lambda-returns G [N] (shared by every
    baseline variant)."""
    policy_net, _ = ppo._networks(env, state.config)
    obs, values, _, targets = ppo.advantages(env, state, traj)
    flat = lambda x: x.reshape((-1, *x.shape[2:]))  # noqa: E731
    obs = flat(obs)
    mean, log_std = policy_net.apply(state.params["policy"], obs)
    x = Inputs(obs, flat(traj.obs), flat(traj.steps), flat(traj.action), mean, log_std,
               flat(values))  # fmt: skip
    return x, flat(targets)


def factor_batch(
    env: Env, state: FPGState, traj: ppo.Transition, variant: str, key, inputs=None
) -> Batch:
    """The flat batch of a rollout with per-dimension advantages under baseline `variant`
    (``inputs``: `batch_inputs` of `traj`, when already computed)."""
    x, targets = batch_inputs(env, state, traj) if inputs is None else inputs
    b = baselines(env, state, variant, x, key)
    return Batch(
        inputs=x,
        log_prob_i=per_dim_log_prob(x.action, x.mean, x.log_std),
        advantage_i=targets[:, None] - b,
        target=targets,
    )


def refit_linear(state: FPGState, batch: Batch) -> linear_baseline.LinearFit:
    """The linear baselines fitted to `batch`'s returns (kept as they are unless fitted)."""
    if not state.config.fits_linear:
        return state.linear
    x = batch.inputs
    return linear_baseline.fit(
        x.raw_obs,
        x.action,
        x.steps,
        batch.target,
        state.config.linear_ridge,
        state.config.linear_ridge_decades,
        state.config.num_envs,  # flat sample n = t * num_envs + env
    )


def update(
    env: Env, state: FPGState, assets: Assets = None
) -> tuple[FPGState, dict[str, jax.Array]]:
    """One iteration: PPO's rollout and GAE, per-dimension advantages, per-dimension surrogate,
    then the linear baselines refitted to this batch (used from the next one on)."""
    config = state.config
    key, k_roll, k_perm, k_base = jax.random.split(state.key, 4)
    env_state, traj = ppo._rollout(env, state, k_roll)
    batch = factor_batch(env, state, traj, config.baseline, k_base)
    params, opt_state, info, lr = ppo.optimise(
        state, batch, lambda p, mb: _loss(p, env, config, mb), k_perm
    )
    state = state.replace(linear=refit_linear(state, batch))
    return ppo.finish(state, env_state, traj, params, opt_state, info, lr, key)


class Estimate(NamedTuple):
    """One batch's policy-gradient estimate under one baseline and how well it fits G."""

    gradient: jax.Array  # [P] flattened over the policy parameters
    unexplained: jax.Array  # [] mean_{n,i} (G_n - b_i(x_n))^2 / Var_n(G): 1 - R^2 of b


def stagger(env: Env, state: FPGState, key: jax.Array) -> FPGState:
    """`state` with env e advanced by its own r_e ~ U{0, ..., limit - 1} steps of the current
    policy (limit: the episode length), so the envs' episodes are out of phase. Envs reset
    together run in step with each other for good when every episode has the same length: a
    batch of U steps then covers one window of episode steps t, and a baseline fitted to one
    window (the linear one's t-features above all) is scored on another."""
    limit = state.config.episode_length or episode_length(env)
    k_offset, k_steps = jax.random.split(key)
    offsets = jax.random.randint(k_offset, (state.config.num_envs,), 0, limit)
    one_step = state.replace(config=state.config.replace(unroll_length=1))

    def advance(i, env_state):
        stepped, _ = ppo._rollout(
            env, one_step.replace(env_state=env_state), jax.random.fold_in(k_steps, i)
        )
        moves = i < offsets

        def pick(new, old):
            return jnp.where(moves.reshape(moves.shape + (1,) * (new.ndim - 1)), new, old)

        return jax.tree.map(pick, stepped, env_state)

    return state.replace(env_state=jax.lax.fori_loop(0, limit, advance, state.env_state))


def fresh_start(env: Env, state: FPGState, key: jax.Array) -> FPGState:
    """`state` with its env states replaced by ones reached after a whole episode's length of
    steps of the current policy from them, with noise drawn from `key`: every env has since
    been reset at least once, from reset keys drawn from `key` (for envs that draw their
    resets; physics envs restart from their one first state), so batches started from such
    states are independent."""
    limit = state.config.episode_length or episode_length(env)
    rounds = -(-limit // state.config.unroll_length)
    k_reset, key = jax.random.split(key)
    info = state.env_state.info
    if "reset_key" in info:  # pure-JAX envs draw each reset from a stored key chain: re-key it
        keys = jax.random.split(k_reset, info["reset_key"].shape[0])
        env_state = state.env_state.replace(info={**info, "reset_key": keys})
        state = state.replace(env_state=env_state)

    def advance(i, s):
        return s.replace(env_state=ppo._rollout(env, s, jax.random.fold_in(key, i))[0])

    return jax.lax.fori_loop(0, rounds, advance, state)


def gradient_estimates(
    env: Env, state: FPGState, key: jax.Array, variants: tuple[str, ...] | None = None
) -> dict[str, Estimate]:
    """The policy-gradient estimate of one fresh rollout under each baseline variant, at the
    current parameters: g_v = grad_theta mean_t sum_i log pi_i(a_ti|s_t) A_t^i (raw advantages,
    no normalisation or clipping), flattened over the policy parameters. The rollout starts
    from independent states (`fresh_start`); every variant sees the same trajectories (a
    paired comparison). `variants` defaults to every one `env` supports (`available`)."""
    config = state.config
    policy_net, _ = ppo._networks(env, config)
    variants = available(env) if variants is None else variants
    k_start, k_roll, k_base = jax.random.split(key, 3)
    state = fresh_start(env, state, k_start)
    _, traj = ppo._rollout(env, state, k_roll)
    inputs = batch_inputs(env, state, traj)
    out = {}
    for variant in variants:
        batch = factor_batch(env, state, traj, variant, k_base, inputs)
        x = batch.inputs

        def surrogate(policy_params, x=x, adv=batch.advantage_i):
            mean, log_std = policy_net.apply(policy_params, x.obs)
            logp = per_dim_log_prob(x.action, mean, log_std)
            return jnp.mean(jnp.sum(logp * jax.lax.stop_gradient(adv), axis=-1))

        grads = jax.grad(surrogate)(state.params["policy"])
        unexplained = jnp.mean(batch.advantage_i**2) / (jnp.var(batch.target) + 1e-12)
        out[variant] = Estimate(
            jnp.concatenate([g.ravel() for g in jax.tree.leaves(grads)]), unexplained
        )
    return out


def decomposition(
    env: Env,
    state: FPGState,
    key: jax.Array,
    num_actions: int = 8,
    num_futures: int = 8,
    horizon: int = 20,
    variants: tuple[str, ...] | None = None,
) -> dict[str, dict[str, jax.Array]]:
    """Tucker et al. (2018) split of the single-sample gradient variance at the current
    parameters, by re-simulation from the run's current env states s (one per env).

    For each s: ``num_actions`` actions a ~ pi(.|s); for each (s, a), ``num_futures`` futures
    tau (fresh policy and env noise) give Q^(s, a, tau) = sum_{l<H} gamma^l r_l + gamma^H V(s_H)
    (masked after a termination). With u_i = grad log pi_i(a_i|s), Q-bar = mean_tau Q^ and
    h_v(s, a) = sum_i (Q-bar - b_i^v(s, a_-i)) u_i, the traces of

        trajectory = E_{s,a} Var_tau(Q^) |sum_i u_i|^2          (the same for every baseline)
        action     = E_s Var_a h_v(s, a) - trajectory / num_futures
        state      = Var_s E_a h_v(s, a) - E_s[Var_a h_v] / num_actions

    (the subtractions remove the finite-sample noise of the inner means). Returns
    {variant: {"state", "action", "trajectory", "total"}} for `variants` (default: `available`).
    """
    config = state.config
    variants = available(env) if variants is None else variants
    policy_net, value_net = ppo._networks(env, config)
    tenv = training_env(env, config.episode_length)
    start = state.env_state
    n = config.num_envs
    k_act, k_fut, k_base = jax.random.split(key, 3)
    obs = start.obs
    norm_obs = ppo._normalize(state, obs)
    mean, log_std = policy_net.apply(state.params["policy"], norm_obs)
    actions = gaussian_sample(
        k_act, jnp.broadcast_to(mean, (num_actions, n, mean.shape[-1])), log_std
    )  # [A, N, m]
    act = ppo.ALGORITHM.policy(state, env)

    def future(first_action: jax.Array, fkey: jax.Array) -> jax.Array:
        """Q^ of one future per env from `start` with `first_action` [N, m]: [N]."""
        s1 = tenv.step(start, jnp.clip(first_action, -1.0, 1.0))

        def body(carry, skey):
            s, ret, alive, disc = carry
            a = jax.vmap(lambda o, k: act(o, k, False))(s.obs, jax.random.split(skey, n))
            nxt = tenv.step(s, a)
            ret = ret + alive * disc * config.reward_scaling * nxt.reward
            alive = alive * (1.0 - nxt.done)
            return (nxt, ret, alive, disc * config.gamma), None

        ret0 = config.reward_scaling * s1.reward
        alive0 = 1.0 - s1.done
        (s_h, ret, alive, disc), _ = jax.lax.scan(
            body, (s1, ret0, alive0, config.gamma), jax.random.split(fkey, horizon - 1)
        )
        v_h = value_net.apply(state.params["value"], ppo._normalize(state, s_h.obs))
        return ret + alive * disc * v_h

    fkeys = jax.random.split(k_fut, (num_actions, num_futures))
    q_hat = jax.vmap(lambda a, ks: jax.vmap(lambda k: future(a, k))(ks))(actions, fkeys)
    q_bar, q_var = q_hat.mean(1), q_hat.var(1, ddof=1)  # [A, N]

    def score_grad(weights: jax.Array, o: jax.Array, a: jax.Array) -> jax.Array:
        """grad_theta sum_i w_i log pi_i(a_i|s), flattened."""

        def f(p):
            mu, ls = policy_net.apply(p, o)
            return jnp.sum(jax.lax.stop_gradient(weights) * per_dim_log_prob(a, mu, ls))

        g = jax.grad(f)(state.params["policy"])
        return jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)])

    ones = jnp.ones_like(actions[0, 0])
    full = jax.vmap(jax.vmap(lambda o, a: score_grad(ones, o, a), (0, 0)), (None, 0))(
        norm_obs, actions
    )  # [A, N, P]: grad log pi(a|s)
    trajectory = jnp.mean(q_var * jnp.sum(full**2, -1))
    values = value_net.apply(state.params["value"], norm_obs)
    steps = jnp.where(start.done > 0, 0.0, start.info["steps"])
    out = {}
    for variant in variants:
        b = jax.vmap(
            lambda a, v=variant: baselines(
                env, state, v, Inputs(norm_obs, obs, steps, a, mean, log_std, values), k_base
            )
        )(actions)  # [A, N, m]
        w = q_bar[..., None] - b
        h = jax.vmap(jax.vmap(score_grad, (0, 0, 0)), (0, None, 0))(w, norm_obs, actions)
        per_state_mean = h.mean(0)  # [N, P]
        action_raw = jnp.mean(jnp.sum(h.var(0, ddof=1), -1))
        state_raw = jnp.sum(per_state_mean.var(0, ddof=1))
        action = action_raw - trajectory / num_futures
        st = state_raw - action_raw / num_actions
        out[variant] = {
            "state": st,
            "action": action,
            "trajectory": trajectory,
            "total": st + action + trajectory,
        }
    return out


def fit_baselines(env: Env, state: FPGState) -> FPGState:
    """One `update` whose policy parameters are put back afterwards: V, Q, the regression
    network and the linear baselines are fitted to the current policy's returns at fixed theta (the variance study's
    protocol: measure a fixed policy's gradient with baselines trained for that policy)."""
    new, _ = update(env, state)
    return new.replace(params={**new.params, "policy": state.params["policy"]})


ALGORITHM = Algorithm(
    name="factorized_pg",
    description=DESCRIPTION,
    Config=Config,
    init=init,
    update=update,
    policy_params=policy_params,
    make_policy=make_policy,
    check_env=check_env,
    extras={
        "gradient_estimates": gradient_estimates,
        "fit_baselines": fit_baselines,
        "stagger": stagger,
        "baselines_fitted_by_gradient": ("state", "regression", "marginal", "mean_action"),
        "decomposition": decomposition,
    },
)
STATE, REGRESSION, MARGINAL, MEAN_ACTION, LINEAR, ORACLE = (
    ALGORITHM.variant(
        f"fpg_{b}", f"Factorized-baseline PPO, {b} baseline b_i (Wu et al. 2018).", baseline=b
    )
    for b in BASELINES
)
