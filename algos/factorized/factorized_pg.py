"""Action-dependent factorized baselines (Wu et al., ICLR 2018), written as an extension of PPO.

This is the template for extending an algorithm: reuse its `Config` (subclass), `init` and
its public pieces (`ppo.networks`, `ppo.rollout`, `ppo.advantages`, `ppo.optimise`,
`ppo.finish`) and replace only what changes, here the advantage and the surrogate. The
gradient-variance study's side (`gradient_estimates`, `decomposition`, ...) lives in
`rlx.algos.factorized.variance`; this record offers it as extras for `rlx gradvar`.

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
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos import ppo
from rlx.algos.factorized import linear_baseline
from rlx.envs import observation_size

from rlx.algorithm import Algorithm
from rlx.config import hparam, require, static
from rlx.data.assets import Assets
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


def critics(config: Config) -> tuple[FactorCritic, FactorCritic]:
    """The action-value network Q(s, a) and the leave-one-out network f_i(s, a_{-i})
    (`FactorCritic`), both modelling the residual G - V(s)."""
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
    q_net, loo_net = critics(config)
    params = {**state.params, "q": q_net.init(k_q, obs, act), "loo": loo_net.init(k_loo, obs, act)}
    fields = {f: getattr(state, f) for f in state.__dataclass_fields__}
    fields.update(params=params, opt_state=ppo.optimizer(config).init(params))
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
    q_net, loo_net = critics(config)
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


def loss(params: dict, env: Env, config: Config, mb: Batch) -> tuple[jax.Array, dict]:
    """The per-dimension clipped surrogate plus the value, Q and leave-one-out regressions
    less the entropy bonus (``loss/...`` metrics)::

        L = -mean_n sum_i min(rho_n^i A_n^i, clip(rho_n^i, 1 - eps, 1 + eps) A_n^i)
            + c_v 1/2 mean (V(s) - G)^2 + c_b (1/2 mean (Q(s, a) - (G - V_old))^2
            + 1/2 mean_{n,i} (f_i(s, a_-i) - (G - V_old))^2) - c_H H[pi],

    rho_n^i = pi_i(a_i|s) / pi_i,old(a_i|s), A standardised over the minibatch; the Q and
    leave-one-out terms only where they are fitted (`Config.fits_q`, `Config.fits_regression`)."""
    policy_net, value_net = ppo.networks(env, config)
    q_net, loo_net = critics(config)
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
    policy_net, _ = ppo.networks(env, state.config)
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
    env_state, traj = ppo.rollout(env, state, k_roll)
    batch = factor_batch(env, state, traj, config.baseline, k_base)
    params, opt_state, info, lr = ppo.optimise(
        state, batch, lambda p, mb: loss(p, env, config, mb), k_perm
    )
    state = state.replace(linear=refit_linear(state, batch))
    return ppo.finish(state, env_state, traj, params, opt_state, info, lr, key)


def study_extra(name: str) -> Callable[..., Any]:
    """The variance study's function `name` of `rlx.algos.factorized.variance`, imported when
    first called (that module is built on this one, so it cannot be imported here first)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        from rlx.algos.factorized import variance

        return getattr(variance, name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"`rlx.algos.factorized.variance.{name}`."
    return call


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
        "gradient_estimates": study_extra("gradient_estimates"),
        "fit_baselines": study_extra("fit_baselines"),
        "stagger": study_extra("stagger"),
        "baselines_fitted_by_gradient": ("state", "regression", "marginal", "mean_action"),
        "decomposition": study_extra("decomposition"),
    },
)
STATE, REGRESSION, MARGINAL, MEAN_ACTION, LINEAR, ORACLE = (
    ALGORITHM.variant(
        f"fpg_{b}", f"Factorized-baseline PPO, {b} baseline b_i (Wu et al. 2018).", baseline=b
    )
    for b in BASELINES
)
