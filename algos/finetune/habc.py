"""HABC: online fine-tuning of a pretrained policy from one binary outcome per episode, with
simulated interventions (rlx's reconstruction of arXiv 2606.17043 from its abstract; the rules
are in `rlx.algos.finetune.outcome_credit` and `rlx.algos.finetune.interventions`, every choice the paper leaves open is a
config option below).

The policy is the pretrained ``bc`` policy mu_theta(s) = tanh(MLP_theta(norm(s))) (asset
``pretrained``, `rlx.algos.finetune.common.PRETRAINED`; `norm` keeps the demonstrations'
statistics), acting with Gaussian exploration a = clip(mu_theta(s) + sigma eps, -1, 1). One
`update`:

1. **Collect** ``num_envs`` episodes of ``episode_length`` steps side by side (no resets; a
   step after the episode's end, or after its success step, is not valid). At each step the
   expert (the env's ``baseline_policy``) takes over when the env's ``danger`` predicate
   fires, when the viability head is below ``viability_trigger`` or with probability
   ``random_prob``, and hands back by the ``release`` rule (default: once the env's
   ``recovered`` predicate holds, after at least ``hold_steps`` steps;
   `rlx.algos.finetune.interventions`). Who acted and why (`interventions.REASONS`) is
   recorded; the outcome is the step at which the env first reports ``goal_reached`` (-1:
   never). `learn` does steps 2-5 on any such `Episodes`, also ones collected elsewhere.
2. **Label** each episode (`outcome_credit.outcome_labels`, intervention-aware or naive; only
   take-overs for a reason in ``failure_reasons`` label the segment before them 0;
   `outcome_credit.efficiency_labels` with gamma_e, anchored at the success step).
3. **Fit the heads**, ``critic_steps`` Adam steps each on minibatches of labelled steps:
   viability V_v(s) = sigmoid(f_v(s)) by binary cross-entropy to the label (Monte Carlo) or to
   V_v(s_{t+1}) inside a segment (TD(0)); efficiency V_e(s) = sigmoid(f_e(s)) by squared error
   to gamma_e^(steps to success) on successful autonomous segments.
4. **Weigh**: one-step advantages A_v = r_v + (1 - end) V_v(s') - V_v(s) (r_v the segment's
   label at its last step) and A_e = r_e + gamma_e (1 - end) V_e(s') - V_e(s) (r_e = 1 on the
   success step), merged by the gate (``gate``: sigmoid(kappa (V_v - c)), V_v^p, a fixed mixture
   or none: viability alone), standardised over the policy's own steps, and turned into
   w = clip(exp(A / beta), 0, w_max); the expert's steps get ``w_int``. ``weighting =
   "uniform"`` gives every valid step weight 1 (plain BC on all collected data).
5. **Clone**: ``policy_steps`` Adam steps on the weighted behaviour-cloning loss

       L(theta) = 1/(B A) sum_i w_i ||mu_theta(s_i) - a_i||^2,

   the negative log-likelihood of a_i under N(mu_theta(s_i), sigma^2 I) up to a constant and
   scale, over rows drawn uniformly from the update's valid steps. a_i is the expert's action
   on its steps and the policy's Gaussian sample *before* clipping to [-1, 1] on its own (the
   env clips; the clipped action's mean is pulled inwards wherever mu is near +-1, so cloning
   it would slow a saturated policy down update after update).
   plus ``anchor`` (mean squared distance to the pretrained policy's mean action on the
   batch, an optional tie to the SFT policy). ``policy_steps = 0`` leaves the pretrained
   policy as it is (the SFT-only baseline).

The budget ``total_steps`` counts online episodes.
``update -> collect -> learn -> (to_rows, fit_heads, step_weights, clone)``. The policy is
reached only through a `PolicyApply` (params, constants, obs) -> mean action, so `learn` also
fine-tunes a policy that is not an rlx artifact (`rlx.algos.finetune.external`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax
from brax.envs.base import Env
from rlx.algos.finetune import interventions
from rlx.algos.finetune import outcome_credit as credit
from rlx.algos.finetune.common import (
    PRETRAINED,
    SUCCESS_STEPS,
    draw,
    policy_net,
    pool,
    pretrained_start,
    require_success_outcome,
    success_steps,
)

from rlx import envs as env_lib
from rlx.algorithm import Algorithm, Unit
from rlx.config import EpisodeBudget, hparam, require, require_counts, static
from rlx.data.assets import Assets
from rlx.errors import RlxError
from rlx.learn import normalizer
from rlx.learn.networks import ACTIVATIONS, MLP
from rlx.metrics import EPISODES, MetricRule

DESCRIPTION = "HABC (reconstruction): outcome-labelled, gated advantage-weighted BC fine-tuning."

LABELS = ("aware", "naive")
TARGETS = ("mc", "td")
GATES = ("sigmoid", "relative", "power", "fixed", "none")
ADVANTAGES = ("one_step", "monte_carlo", "discounted_mc")
REASONS = interventions.REASONS
FAILURES = REASONS[1:]
WEIGHTINGS = ("advantage", "uniform")


@flax.struct.dataclass
class Config(EpisodeBudget):
    """HABC settings (module docstring). Static fields fix the program; hyperparameters are
    vmappable leaves."""

    total_steps: int = static(1024, "Online episodes per run.")
    num_envs: int = static(32, "Episodes collected side by side per update.")
    episode_length: int = static(0, "Steps per episode (0: the env's default).")
    hidden: tuple[int, ...] = static((256, 256), "Policy hidden widths (the pretrained one's).")
    activation: str = static("relu", "Policy activation (the pretrained one's).")
    critic_hidden: tuple[int, ...] = static((256, 256), "Viability/efficiency head widths.")
    critic_steps: int = static(50, "Adam steps on each head per update.")
    policy_steps: int = static(50, "Weighted-BC Adam steps per update (0: SFT only).")
    batch_size: int = static(256, "Rows per gradient step, drawn from the update's steps.")
    labels: str = static("aware", "Outcome labels: aware (stop at interventions) or naive.")
    viability_target: str = static("mc", "Viability target: mc (segment label) or td (TD(0)).")
    advantage: str = static("one_step", "Advantages: one_step (TD) or monte_carlo (label - V).")
    gate: str = static("sigmoid", "Gate: sigmoid, relative, power, fixed or none.")
    weighting: str = static("advantage", "advantage (AWR weights) or uniform (plain BC).")
    normalize_weights: bool = static(True, "Divide own-step weights by their mean.")
    anchor: float = static(0.0, "Weight of the squared distance to the SFT policy's mean.")
    interventions: bool = static(True, "Let the expert take over (needs baseline_policy).")
    danger_trigger: bool = static(True, "Take over when the env's danger predicate fires.")
    release: str = static("recovered", "Hand back: steps, safe or recovered (env predicate).")
    hold_steps: int = static(10, "Steps held: exactly (steps), at most (safe), at least.")
    max_hold: int = static(150, "Most steps of one intervention with release = recovered.")
    failure_reasons: tuple[str, ...] = static(
        ("danger",), "Take-over reasons that label the segment before them 0."
    )
    random_prob: float = hparam(0.0, "Per-step probability of an unprovoked take-over.")
    viability_trigger: float = hparam(0.0, "Take over while V_v(s) < this (0: off).")
    explore_std: float = hparam(0.1, "Exploration noise sigma on the policy's actions.")
    policy_lr: float = hparam(1e-4, "Adam step size of the policy.")
    critic_lr: float = hparam(1e-3, "Adam step size of both heads.")
    gamma_e: float = hparam(0.97, "Efficiency discount: V_e = gamma_e^(steps to success).")
    kappa: float = hparam(10.0, "Sigmoid gate slope.")
    gate_threshold: float = hparam(0.8, "Sigmoid gate threshold c on V_v, in [0, 1].")
    gate_quantile: float = hparam(0.5, "Relative gate: c = this quantile of V_v, in [0, 1].")
    gate_power: float = hparam(2.0, "Power gate exponent p.")
    fixed_gate: float = hparam(0.5, "The fixed gate's mixture weight on the efficiency term.")
    beta: float = hparam(1.0, "AWR temperature.")
    w_max: float = hparam(20.0, "AWR weight clip.")
    w_int: float = hparam(1.0, "BC weight of the expert's (intervention) steps.")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        require_counts(self, ("total_steps", "num_envs", "critic_steps", "batch_size",
                              "hold_steps", "max_hold"), ("episode_length", "policy_steps"))  # fmt: skip
        self.check_episode_budget()
        for name, allowed in (("labels", LABELS), ("viability_target", TARGETS),
                              ("advantage", ADVANTAGES),
                              ("gate", GATES), ("weighting", WEIGHTINGS),
                              ("release", interventions.RELEASES),
                              ("activation", tuple(ACTIVATIONS))):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise RlxError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}."
                )
        bad = [r for r in self.failure_reasons if r not in FAILURES]
        if bad or not isinstance(self.failure_reasons, tuple):
            raise RlxError(f"failure_reasons must name reasons among {', '.join(FAILURES)}, "
                           f"got {bad or self.failure_reasons!r}.")  # fmt: skip
        if isinstance(self.anchor, bool) or not isinstance(self.anchor, int | float) \
                or self.anchor < 0:  # fmt: skip
            raise RlxError(f"anchor must be a number >= 0, got {self.anchor!r}.")
        if not all(w > 0 for w in (*self.hidden, *self.critic_hidden)):
            raise RlxError("hidden and critic_hidden widths must be positive integers.")
        unit = (lambda v: 0 <= v <= 1, "in [0, 1]")
        require(
            self,
            random_prob=unit, viability_trigger=unit, gate_threshold=unit, fixed_gate=unit,
            gate_quantile=unit,
            explore_std=(lambda v: v >= 0, ">= 0"), policy_lr=(lambda v: v >= 0, ">= 0"),
            critic_lr=(lambda v: v > 0, "> 0"), gamma_e=(lambda v: 0 < v <= 1, "in (0, 1]"),
            kappa=(lambda v: v > 0, "> 0"), gate_power=(lambda v: v > 0, "> 0"),
            beta=(lambda v: v > 0, "> 0"), w_max=(lambda v: v >= 1, ">= 1"),
            w_int=(lambda v: v >= 0, ">= 0"),
        )  # fmt: skip


class Head(nn.Module):
    """A value head V(s) = sigmoid(MLP(s)) in (0, 1)."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(MLP(self.hidden, 1, "relu")(obs)[..., 0])


class Heads(NamedTuple):
    """The two critics' parameters (or optimiser states)."""

    viability: Any
    efficiency: Any


PolicyApply = Callable[[Any, Any, jax.Array], jax.Array]
"""apply(params, constants, obs [..., O]) -> the policy's mean action [..., A] in [-1, 1]:
params are what fine-tuning trains, constants what it keeps (observation statistics)."""


@flax.struct.dataclass
class HabcState:
    """Policy (and its pretrained copy, the anchor's reference), its constants, heads, their
    Adam moments, the heads' observation statistics, RNG, counter."""

    config: Config
    policy: Any
    policy_opt: optax.OptState
    reference: Any
    constants: Any
    heads: Heads
    heads_opt: Heads
    obs_stats: normalizer.RunningStats
    key: jax.Array
    update_step: jax.Array


class Episodes(NamedTuple):
    """One update's episodes, [E, T] per step (``obs``/``next_obs``/``action`` add a width)."""

    obs: jax.Array
    next_obs: jax.Array
    action: jax.Array  # the BC target: the expert's action, or the policy's unclipped sample
    intervened: jax.Array  # bool
    reason: jax.Array  # int32: `REASONS` code (0 where the policy acted)
    valid: jax.Array  # bool, a prefix of each row
    started: jax.Array  # bool: an intervention began at this step
    success_step: jax.Array  # [E] int32: the step the episode succeeded on, -1 if it failed
    ret: jax.Array  # [E]

    @property
    def success(self) -> jax.Array:
        """[E] bool: the episode's outcome."""
        return self.success_step >= 0


class Credit(NamedTuple):
    """Per-step labels and one-step terms of the heads, [E, T]."""

    viability: credit.Labels
    efficiency: credit.Labels
    end: jax.Array  # bool: last step of its credit chain (no bootstrap from s_{t+1})
    reward_v: jax.Array  # the chain's viability label at its end, else 0
    reward_e: jax.Array  # 1 on the success step, else 0
    own: jax.Array  # bool: valid steps (up to success) the policy acted on


def _head(config: Config) -> Head:
    return Head(config.critic_hidden)


def artifact_apply(env: Env, config: Config) -> PolicyApply:
    """The `PolicyApply` of rlx's ``bc`` artifacts: mu_theta(norm(s)), constants the
    observation statistics in `normalizer.as_dict` form."""
    net = policy_net(env, config)
    return lambda params, stats, obs: net.apply(params, normalizer.normalize(
        normalizer.from_dict(stats), obs))  # fmt: skip


def init_from(key: jax.Array, config: Config, policy: Any, constants: Any,
              obs_stats: normalizer.RunningStats, obs_size: int) -> HabcState:  # fmt: skip
    """A state fine-tuning `policy` (params; `constants` kept), with fresh heads that see
    observations normalised by `obs_stats`."""
    k_v, k_e, k_next = jax.random.split(key, 3)
    dummy = jnp.zeros((obs_size,), jnp.float32)
    heads = Heads(_head(config).init(k_v, dummy), _head(config).init(k_e, dummy))
    return HabcState(
        config=config,
        policy=policy,
        policy_opt=optax.scale_by_adam().init(policy),
        reference=policy,
        constants=constants,
        heads=heads,
        heads_opt=Heads(*(optax.scale_by_adam().init(h) for h in heads)),
        obs_stats=obs_stats,
        key=k_next,
        update_step=jnp.zeros((), jnp.int32),
    )


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> HabcState:
    """The pretrained policy and its observation statistics (copied from the asset), fresh
    heads and Adam moments."""
    policy, obs_stats = pretrained_start(assets, "habc")
    return init_from(key, config, policy, normalizer.as_dict(obs_stats), obs_stats,
                     env_lib.observation_size(env))  # fmt: skip


def policy_params(state: HabcState) -> dict[str, Any]:
    """The fine-tuned policy in ``bc``'s artifact form: network params and obs statistics."""
    return {"policy": state.policy, "obs_stats": state.constants}


def make_policy(params: dict[str, Any], env: Env, config: Config) -> Callable[..., jax.Array]:
    """act(obs, key, deterministic): mu_theta(obs), or with ``explore_std`` Gaussian noise
    (clipped to [-1, 1]) when not deterministic."""
    apply = artifact_apply(env, config)

    def act(obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
        mean = apply(params["policy"], params["obs_stats"], obs)
        if deterministic:
            return mean
        noise = config.explore_std * jax.random.normal(key, mean.shape, mean.dtype)
        return jnp.clip(mean + noise, -1.0, 1.0)

    return act


# --- 1. collection ---------------------------------------------------------------------------


def rule(config: Config) -> interventions.Rule:
    """The configured take-over and hand-back rule."""
    return interventions.Rule(config.hold_steps, config.random_prob, config.viability_trigger,
                              config.release, config.max_hold)  # fmt: skip


def _viability(state: HabcState, obs: jax.Array) -> jax.Array:
    return _head(state.config).apply(
        state.heads.viability, normalizer.normalize(state.obs_stats, obs)
    )


def _who_acts(env: Env, state: HabcState, env_state, key: jax.Array, guard):
    """(guard, expert acts [E], reason [E]) for this step (`interventions.step`)."""
    config, n = state.config, env_state.obs.shape[0]
    if not config.interventions:
        return guard, jnp.zeros((n,), bool), jnp.zeros((n,), jnp.int32)
    danger = env.danger(env_state) if config.danger_trigger else jnp.zeros((n,), bool)
    recovered = env.recovered(env_state) if config.release == "recovered" else None
    return interventions.step(guard, danger, _viability(state, env_state.obs), key,
                              rule(config), recovered)  # fmt: skip


def collect(env: Env, state: HabcState, key: jax.Array, apply: PolicyApply | None = None
            ) -> Episodes:  # fmt: skip
    """``num_envs`` episodes of the current policy (reached through `apply`, default the rlx
    artifact's) with exploration and interventions; an episode ends at its env's ``done`` or at
    its first success, whichever comes first."""
    config = state.config
    length = config.episode_length or env_lib.episode_length(env)
    n = config.num_envs
    apply = apply or artifact_apply(env, config)
    k_reset, k_steps = jax.random.split(key)

    def _step(carry, xs):
        env_state, alive, guard, ret, success_step = carry
        step_key, t = xs
        k_act, k_int = jax.random.split(step_key)
        obs = env_state.obs
        mean = apply(state.policy, state.constants, obs)
        own = mean + config.explore_std * jax.random.normal(k_act, mean.shape, mean.dtype)
        guard, expert, reason = _who_acts(env, state, env_state, k_int, guard)
        target = interventions.mix(own, env.baseline_policy(obs), expert) if \
            config.interventions else own  # fmt: skip
        nxt = jax.vmap(env.step)(env_state, jnp.clip(target, -1.0, 1.0))
        live = alive > 0
        won = live & (nxt.metrics["goal_reached"] > 0)
        success_step = jnp.where(won & (success_step < 0), t, success_step)
        ret = ret + alive * nxt.reward
        row = (obs, nxt.obs, target, expert & live, jnp.where(live, reason, 0), live)
        alive = alive * (1.0 - nxt.done) * (1.0 - won)
        return (nxt, alive, guard, ret, success_step), row

    first = jax.vmap(env.reset)(jax.random.split(k_reset, n))
    zeros = jnp.zeros((n,), jnp.float32)
    carry = (first, jnp.ones_like(zeros), interventions.idle(n), zeros,
             jnp.full((n,), -1, jnp.int32))  # fmt: skip
    xs = (jax.random.split(k_steps, length), jnp.arange(length, dtype=jnp.int32))
    (_, _, _, ret, success_step), rows = jax.lax.scan(_step, carry, xs)
    obs, next_obs, action, expert, reason, valid = (jnp.swapaxes(x, 0, 1) for x in rows)
    before = jnp.pad(expert[:, :-1], ((0, 0), (1, 0)))
    return Episodes(obs, next_obs, action, expert, reason, valid, expert & ~before,
                    success_step, ret)  # fmt: skip


# --- 2.-4. credit ----------------------------------------------------------------------------


def failure_steps(reason: jax.Array, failure_reasons: Sequence[str]) -> jax.Array:
    """bool, like `reason`: the expert acted, taken over for one of `failure_reasons`."""
    codes = jnp.asarray([REASONS.index(r) for r in failure_reasons] or [-1], jnp.int32)
    return jnp.isin(reason, codes)


def episode_credit(intervened: jax.Array, valid: jax.Array, success_step: jax.Array,
                   gamma_e: jax.Array, config: Config, reason: jax.Array | None = None
                   ) -> Credit:  # fmt: skip
    """Labels and one-step terms of one episode ([T] rows; `reason` None: every take-over
    stands for a failure). Aware: each labelled segment is its own chain (it ends at its last
    step with its label as reward), a segment a non-failure take-over ended bootstraps from
    the state the expert took over in; naive: the episode is one chain ending at its success
    step or last valid step, with reward z. ``advantage = "discounted_mc"`` fits the efficiency
    head to the discounted return of every valid step."""
    aware = config.labels == "aware"
    failure = None if reason is None else failure_steps(reason, config.failure_reasons)
    valid = credit.until_success(valid, success_step)
    v_labels = credit.outcome_labels(intervened, valid, success_step, aware, failure)
    if config.advantage == "discounted_mc":
        e_labels = credit.discounted_returns(valid, success_step, gamma_e)
    else:
        e_labels = credit.efficiency_labels(intervened, valid, success_step, gamma_e, aware)
    t = jnp.arange(valid.shape[0])
    last = valid & (t == credit.last_step(valid))
    if aware:
        ids = credit.segment_ids(intervened, valid)
        seg_end = valid & (jnp.append(ids[1:], -1) != ids)
        end = last | (seg_end & (intervened | credit.failure_ended(intervened, valid, failure)))
    else:
        end = last
    z = (success_step >= 0).astype(jnp.float32)
    reward_v = jnp.where(end, v_labels.target if aware else z, 0.0)
    reward_e = jnp.where(t == success_step, 1.0, 0.0)
    return Credit(v_labels, e_labels, end, reward_v, reward_e, valid & ~intervened)


def gate_value(config: Config, viability: jax.Array, own: jax.Array | None = None) -> jax.Array:
    """The gate g(s) on the efficiency advantage (``config.gate``; 'none' is 0; 'relative'
    thresholds at the ``gate_quantile`` of V_v over the `own` steps)."""
    if config.gate == "sigmoid":
        return credit.sigmoid_gate(viability, config.kappa, config.gate_threshold)
    if config.gate == "relative":
        mask = jnp.ones_like(viability, bool) if own is None else own
        c = credit.relative_threshold(viability, mask, config.gate_quantile)
        return credit.sigmoid_gate(viability, config.kappa, c)
    if config.gate == "power":
        return credit.power_gate(viability, config.gate_power)
    if config.gate == "fixed":
        return jnp.full_like(viability, config.fixed_gate)
    return jnp.zeros_like(viability)


class Weights(NamedTuple):
    """Per-step BC weights and what they were made of (for the metrics), [E, T]."""

    weight: jax.Array
    gate: jax.Array


def advantages(config: Config, c: Credit, values: Heads, next_values: Heads
               ) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """(A_v, A_e) by ``config.advantage`` (module docstring; "discounted_mc" puts the single
    critic's G_t - V(s_t) in A_e and 0 in A_v)."""
    if config.advantage == "discounted_mc":
        return jnp.zeros_like(values.efficiency), c.efficiency.target - values.efficiency
    if config.advantage == "monte_carlo":
        return c.viability.target - values.viability, c.efficiency.target - values.efficiency
    a_v = credit.one_step_advantage(values.viability, next_values.viability, c.reward_v,
                                    c.end, jnp.float32(1.0))  # fmt: skip
    a_e = credit.one_step_advantage(values.efficiency, next_values.efficiency, c.reward_e,
                                    c.end, config.gamma_e)  # fmt: skip
    return a_v, a_e


def step_weights(
    config: Config, c: Credit, valid: jax.Array, values: Heads, next_values: Heads
) -> Weights:
    """w_t (module docstring, step 4) from the heads' values at s_t and s_{t+1}; with
    ``advantage = "monte_carlo"`` the advantages are the labels less the values, A_v = y_t -
    V_v(s_t) and A_e = gamma_e^(steps to success) - V_e(s_t) (0 - V_e(s_t) off successful
    segments), so every step of a segment shares its outcome."""
    a_v, a_e = advantages(config, c, values, next_values)
    if config.advantage == "discounted_mc":
        gate = jnp.ones_like(values.viability)
    else:
        gate = gate_value(config, values.viability, c.own)
    merged = credit.merged_advantage(a_v, a_e, gate, c.own)
    if config.weighting == "uniform":
        return Weights(valid.astype(jnp.float32), gate)
    own_w = credit.awr_weights(merged, config.beta, config.w_max)
    if config.normalize_weights:
        own_w = credit.mean_one(own_w, c.own)
    weight = credit.bc_weights(own_w, valid & ~c.own, valid, config.w_int)
    return Weights(weight, gate)


# --- 3. and 5. gradient steps ----------------------------------------------------------------


def bce(p: jax.Array, target: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Binary cross-entropy -(y log p + (1 - y) log(1 - p)), elementwise."""
    p = jnp.clip(p, eps, 1.0 - eps)
    return -(target * jnp.log(p) + (1.0 - target) * jnp.log(1.0 - p))


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of `x` over the entries where `mask` (0 when none)."""
    w = mask.astype(x.dtype)
    return jnp.sum(w * x) / jnp.maximum(jnp.sum(w), 1.0)


class Rows(NamedTuple):
    """The update's steps flattened to [E*T] rows: raw observations (the policy's input),
    normalised ones (the heads'), actions, validity, credit."""

    raw_obs: jax.Array
    obs: jax.Array
    next_obs: jax.Array
    action: jax.Array
    valid: jax.Array
    credit: Credit


def _adam_step(params, opt_state, grads, lr):
    steps, opt_state = optax.scale_by_adam().update(grads, opt_state, params)
    return jax.tree.map(lambda p, s: p - lr * s, params, steps), opt_state


def fit_heads(state: HabcState, rows: Rows, key: jax.Array) -> tuple[HabcState, dict]:
    """``critic_steps`` Adam steps of each head on minibatches of its labelled rows."""
    config, head = state.config, _head(state.config)
    c = rows.credit

    def v_loss(params, idx):
        p = head.apply(params, rows.obs[idx])
        if config.viability_target == "td":
            bootstrap = jax.lax.stop_gradient(head.apply(params, rows.next_obs[idx]))
            target = jnp.where(c.end[idx], c.reward_v[idx], bootstrap)
        else:
            target = c.viability.target[idx]
        return masked_mean(bce(p, target), c.viability.labelled[idx])

    def e_loss(params, idx):
        err = (head.apply(params, rows.obs[idx]) - c.efficiency.target[idx]) ** 2
        return masked_mean(err, c.efficiency.labelled[idx])

    v_rows, e_rows = pool(c.viability.labelled), pool(c.efficiency.labelled)

    def one(carry, k):
        heads, opts = carry
        k_v, k_e = jax.random.split(k)
        lv, gv = jax.value_and_grad(v_loss)(heads.viability, draw(k_v, v_rows, config.batch_size))
        le, ge = jax.value_and_grad(e_loss)(heads.efficiency, draw(k_e, e_rows, config.batch_size))
        pv, ov = _adam_step(heads.viability, opts.viability, gv, config.critic_lr)
        pe, oe = _adam_step(heads.efficiency, opts.efficiency, ge, config.critic_lr)
        return (Heads(pv, pe), Heads(ov, oe)), (lv, le)

    keys = jax.random.split(key, config.critic_steps)
    (heads, opts), (lv, le) = jax.lax.scan(one, (state.heads, state.heads_opt), keys)
    metrics = {"loss/viability": lv.mean(), "loss/efficiency": le.mean()}
    return state.replace(heads=heads, heads_opt=opts), metrics


def weighted_bc_loss(predicted: jax.Array, target: jax.Array, weight: jax.Array) -> jax.Array:
    """1/(B A) sum_i w_i sum_j (predicted_ij - target_ij)^2 for [B, A] actions, [B] weights."""
    chex.assert_rank([predicted, weight], [2, 1])
    chex.assert_equal_shape([predicted, target])
    chex.assert_equal_shape_prefix([predicted, weight], 1)
    return jnp.mean(weight[:, None] * (predicted - target) ** 2)


def clone(state: HabcState, rows: Rows, weight: jax.Array, key: jax.Array, apply: PolicyApply
          ) -> tuple[HabcState, jax.Array]:  # fmt: skip
    """``policy_steps`` Adam steps on `weighted_bc_loss` (plus ``anchor`` times the mean squared
    distance to the pretrained policy's mean action) over rows drawn from valid steps; returns
    the state and the mean loss (0 without steps)."""
    config = state.config
    if config.policy_steps == 0:
        return state, jnp.zeros((), jnp.float32)

    def loss(params, idx):
        obs = rows.raw_obs[idx]
        mean = apply(params, state.constants, obs)
        value = weighted_bc_loss(mean, rows.action[idx], weight[idx])
        if config.anchor > 0:
            ref = jax.lax.stop_gradient(apply(state.reference, state.constants, obs))
            value = value + config.anchor * jnp.mean((mean - ref) ** 2)
        return value

    valid = pool(rows.valid)

    def one(carry, k):
        params, opt = carry
        value, grads = jax.value_and_grad(loss)(params, draw(k, valid, config.batch_size))
        params, opt = _adam_step(params, opt, grads, config.policy_lr)
        return (params, opt), value

    keys = jax.random.split(key, config.policy_steps)
    (params, opt), losses = jax.lax.scan(one, (state.policy, state.policy_opt), keys)
    return state.replace(policy=params, policy_opt=opt), jnp.mean(losses)


# --- the update ------------------------------------------------------------------------------


def _flat(x: jax.Array) -> jax.Array:
    return x.reshape((-1, *x.shape[2:]))


def to_rows(state: HabcState, ep: Episodes) -> Rows:
    """The episodes' steps as [E*T] rows with normalised observations and their credit."""
    config = state.config
    c = jax.vmap(lambda i, v, z, r: episode_credit(i, v, z, config.gamma_e, config, r))(
        ep.intervened, ep.valid, ep.success_step, ep.reason
    )
    norm = lambda o: normalizer.normalize(state.obs_stats, _flat(o))  # noqa: E731
    valid = jax.vmap(credit.until_success)(ep.valid, ep.success_step)
    return Rows(_flat(ep.obs), norm(ep.obs), norm(ep.next_obs), _flat(ep.action), _flat(valid),
                jax.tree.map(_flat, c))  # fmt: skip


def head_values(state: HabcState, obs: jax.Array) -> Heads:
    """Both heads' values at normalised observations [N, obs]."""
    head = _head(state.config)
    return Heads(head.apply(state.heads.viability, obs), head.apply(state.heads.efficiency, obs))


def learn(state: HabcState, episodes: Episodes, apply: PolicyApply) -> tuple[HabcState, dict]:
    """Steps 2-5 of the module docstring on `episodes` (collected here or elsewhere): label,
    fit the heads, weigh, clone the policy reached through `apply`."""
    key, k_heads, k_clone = jax.random.split(state.key, 3)
    rows = to_rows(state, episodes)
    state, head_metrics = fit_heads(state, rows, k_heads)
    weights = step_weights(state.config, rows.credit, rows.valid,
                           head_values(state, rows.obs), head_values(state, rows.next_obs))  # fmt: skip
    state, bc = clone(state, rows, weights.weight, k_clone, apply)
    state = state.replace(key=key, update_step=state.update_step + 1)
    return state, {**episode_metrics(episodes), **head_metrics, "loss/bc": bc,
                   **weight_metrics(weights, rows, episodes)}  # fmt: skip


def update(env: Env, state: HabcState, assets: Assets = None) -> tuple[HabcState, dict]:
    """One HABC iteration: collect, then `learn` (module docstring)."""
    key, k_collect = jax.random.split(state.key)
    episodes = collect(env, state, k_collect)
    return learn(state.replace(key=key), episodes, artifact_apply(env, state.config))


# --- metrics ---------------------------------------------------------------------------------


def episode_metrics(ep: Episodes) -> dict[str, jax.Array]:
    """The update's episodes: count, return, success (with interventions), success without
    any, share of steps the expert acted on (in all and by reason), take-overs and steps per
    episode."""
    steps = ep.valid.sum(-1).astype(jnp.float32)
    expert = ep.intervened.sum(-1).astype(jnp.float32)
    success = ep.success.astype(jnp.float32)
    per_step = jnp.maximum(steps, 1.0)
    by_reason = {
        f"habc/intervention_rate_{name}": (
            (ep.intervened & ep.valid & (ep.reason == code)).sum(-1) / per_step
        ).mean()
        for code, name in enumerate(REASONS) if code > 0
    }  # fmt: skip
    return {
        EPISODES: jnp.float32(ep.success_step.shape[0]),
        "train/episode_return": ep.ret.mean(),
        "train/episode_goal_reached": success.mean(),
        "habc/autonomous_success": (success * (expert == 0)).mean(),
        "habc/intervention_rate": (expert / per_step).mean(),
        **by_reason,
        "habc/takeovers": ep.started.sum(-1).astype(jnp.float32).mean(),
        "habc/episode_steps": steps.mean(),
    }


def weight_metrics(w: Weights, rows: Rows, ep: Episodes) -> dict[str, jax.Array]:
    """Means over the policy's own steps: gate (in all, in successful and in failed episodes),
    BC weight, and the weights' effective sample share (sum w)^2 / (n sum w^2)."""
    own = rows.credit.own
    won = _flat(jnp.broadcast_to(ep.success[:, None], ep.valid.shape))
    n = jnp.maximum(own.sum(), 1).astype(jnp.float32)
    wo = jnp.where(own, w.weight, 0.0)
    ess = jnp.sum(wo) ** 2 / jnp.maximum(n * jnp.sum(wo**2), 1e-12)
    return {"habc/gate": masked_mean(w.gate, own),
            "habc/gate_success": _mean_or_nan(w.gate, own & won),
            "habc/gate_failure": _mean_or_nan(w.gate, own & ~won),
            "habc/weight": masked_mean(w.weight, own), "habc/weight_ess": ess}  # fmt: skip


def _mean_or_nan(x: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask.any(), masked_mean(x, mask), jnp.nan)


def metric_rules(env: Env) -> dict[str, MetricRule]:
    """HABC's training and diagnostic metrics."""
    return {
        EPISODES: MetricRule("sum", "train episodes"),
        "train/episode_return": MetricRule("episode_mean", "train return"),
        "train/episode_goal_reached": MetricRule("episode_mean", "train success", True),
        "habc/autonomous_success": MetricRule(label="success without help", percent=True),
        "habc/intervention_rate": MetricRule(label="intervention rate", percent=True),
        **{
            f"habc/intervention_rate_{r}": MetricRule(
                label=f"intervention rate ({r})", percent=True
            )
            for r in REASONS[1:]
        },
        "habc/takeovers": MetricRule(label="take-overs per episode"),
        "habc/episode_steps": MetricRule(label="train episode steps"),
        "habc/gate": MetricRule(label="gate"),
        "habc/gate_success": MetricRule(label="gate (successful episodes)", allow_nan=True),
        "habc/gate_failure": MetricRule(label="gate (failed episodes)", allow_nan=True),
        "habc/weight": MetricRule(label="BC weight"),
        "habc/weight_ess": MetricRule(label="weights' effective share", percent=True),
        "loss/viability": MetricRule(label="viability loss (BCE)"),
        "loss/efficiency": MetricRule(label="efficiency loss (MSE)"),
        "loss/bc": MetricRule(label="weighted BC loss"),
        SUCCESS_STEPS: MetricRule(label="steps to success", allow_nan=True),
    }


def diagnostics(state: HabcState, env: Env, assets: Assets, key: jax.Array) -> dict:
    """The deterministic policy's mean steps to success over ``num_envs`` episodes without
    interventions (NaN when none succeeds): the efficiency the paper's second head targets."""
    config = state.config
    act = make_policy(policy_params(state), env, config)
    return success_steps(act, env, config.num_envs, config.episode_length, key)


def check_env(env: Env, config: Config) -> None:
    """RlxError for an env without a success outcome, or without the expert (and danger
    predicate) that the configured interventions need."""
    require_success_outcome(env, "habc")
    if not getattr(env, "ends_at_success", False):
        raise RlxError(
            f"habc needs an env whose episode ends on its success step (ends_at_success = "
            f"True: its outcome credit is anchored there); {type(env).__name__} does not "
            f"declare it."
        )
    if config.interventions:
        env_lib.require_baseline(env, "habc with interventions = true")
        if config.danger_trigger and not callable(getattr(env, "danger", None)):
            raise RlxError(
                f"danger_trigger = true needs the env's danger predicate (danger(state)); "
                f"{type(env).__name__} has none: set danger_trigger = false."
            )
        if config.release == "recovered" and not callable(getattr(env, "recovered", None)):
            raise RlxError(
                f"release = recovered needs the env's recovered predicate (recovered(state)); "
                f"{type(env).__name__} has none: set release = steps or safe."
            )


ALGORITHM = Algorithm(
    name="habc",
    description=DESCRIPTION,
    Config=Config,
    init=init,
    update=update,
    policy_params=policy_params,
    make_policy=make_policy,
    check_env=check_env,
    unit=Unit.EPISODES,
    metric_rules=metric_rules,
    assets={"pretrained": PRETRAINED},
    diagnostics=diagnostics,
)
SFT = ALGORITHM.variant("habc_sft", "SFT only: the pretrained policy, not fine-tuned.",
                        policy_steps=0)  # fmt: skip
UNIFORM = ALGORITHM.variant(
    "habc_uniform", "SFT continued on all collected data (unweighted BC).", weighting="uniform"
)
AWR = ALGORITHM.variant(
    "habc_awr",
    "Single-critic AWR: one Monte-Carlo discounted critic of the outcome, no gate.",
    advantage="discounted_mc",
)
VIABILITY = ALGORITHM.variant(
    "habc_viability", "HABC's viability head alone (no efficiency term, no gate).", gate="none"
)
NAIVE = ALGORITHM.variant(
    "habc_naive",
    "HABC with naive outcome labels (crossing interventions) for both heads.",
    labels="naive",
)
FIXED = ALGORITHM.variant(
    "habc_fixed", "HABC with a fixed 50/50 mixture instead of the gate.", gate="fixed"
)
RELATIVE = ALGORITHM.variant(
    "habc_relative",
    "HABC with the relative gate (threshold: the batch's median V_v).",
    gate="relative",
)
NO_EXPERT_BC = ALGORITHM.variant(
    "habc_wint0", "HABC with the expert's steps weighted 0 (w_int = 0).", w_int=0.0
)
NO_INTERVENTIONS = ALGORITHM.variant(
    "habc_noint", "HABC without interventions (the policy acts alone).", interventions=False
)
