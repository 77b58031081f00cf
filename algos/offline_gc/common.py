"""Shared machinery of the offline goal-conditioned learners (``algos/trl.py``, ``gciql``,
``gcivl``, ``crl``, ``qrl``, ``gcbc``), in the rlx algorithm contract.

Each learner is a set of named flax modules (``"actor"``, ``"critic"``, ...) trained together
by one Adam optimiser on a loss ``loss(params, targets, batch, config, key) -> (L, metrics)``,
some with Polyak-averaged target copies, on batches relabelled from the ``"dataset"`` asset
(`rlx.data.trajectories`, goals by `rlx.algos.offline_gc.goal_sampling`). Nothing steps an environment: the budget
counts gradient steps, and an update is ``grad_steps_per_update`` of them in a `lax.scan`::

    update -> _grad_step -> (sample_batch, loss, adam_step, polyak)

The acting policy is the actor's mode, ``clip(mu(s, g), -1, 1)`` (OGBench evaluates at
temperature 0), on the observation ``concat(state, goal)`` of a goal-conditioned env
(`rlx.envs.goals.GoalLayout`).

Config building blocks (`GCConfig` and mixins) declare each field once with its doc; a
learner's Config combines those it uses and redeclares, with `with_default`, the fields whose
published point-maze value differs, so that ``Config()`` itself is the published
pointmaze-medium setting (OGBench's for the baselines, TRL's for TRL) and the record carries
no defaults of its own. OGBench uses one pointmaze setting for every maze size except gamma
(0.995 on giant, set by the sweep); that large and giant reuse the medium settings is our
choice where no source gives them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from brax.envs.base import Env
from rlx.algos.offline_gc import goal_sampling
from rlx.algos.offline_gc import value_accuracy as va
from rlx.algos.offline_gc.nets import GCActor, unit_gaussian_log_prob
from rlx.envs.goals import GoalLayout, require_goal_layout

from rlx.algorithm import Algorithm, Unit
from rlx.config import GradientSteps, fields, hparam, is_hparam, require, static
from rlx.data.assets import Assets
from rlx.data.trajectories import DATASET
from rlx.errors import RlxError
from rlx.learn.optim import adam_step, polyak
from rlx.metrics import MetricRule

Params = dict[str, Any]
"""Parameters by module name."""


def with_default(block: type, name: str, default: Any) -> Any:
    """Field `name` of the config class `block` redeclared with another `default`: the same
    kind (static or hparam) and doc, for a learner whose published value differs."""
    field = fields(block)[name]
    make = hparam if is_hparam(field) else static
    return make(default, field.metadata["doc"])


@flax.struct.dataclass
class GCConfig(GradientSteps):
    """Settings every offline goal-conditioned learner has, at OGBench's pointmaze values (3x512
    MLPs, batch 1024, Adam 3e-4, gamma 0.99; actor goals later in the trajectory, uniform). The
    budget fields are ours (OGBench: 1M gradient steps)."""

    total_steps: int = static(100_000, "Gradient steps per run.")
    grad_steps_per_update: int = static(1000, "Gradient steps per update (one lax.scan).")
    batch_size: int = static(1024, "Transitions per gradient step.")
    actor_hidden: tuple[int, ...] = static((512, 512, 512), "Actor MLP hidden widths.")
    actor_layer_norm: bool = static(False, "LayerNorm after each actor hidden layer.")
    actor_geom_sample: bool = static(False, "Actor goals: geometric (True) or uniform future.")
    learning_rate: float = hparam(3e-4, "Adam step size (one optimiser for every module).")
    gamma: float = hparam(0.99, "Discount (also the geometric goal sampler's 1 - p).")
    actor_p_curgoal: float = hparam(0.0, "Actor goals: probability of the current state.")
    actor_p_trajgoal: float = hparam(
        1.0, "Actor goals: probability of a later state (rest: random)."
    )

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        self.check_gradient_budget()
        for name in ("actor_hidden", "value_hidden"):
            widths = getattr(self, name, (1,))
            if not widths or not all(isinstance(w, int) and w > 0 for w in widths):
                raise RlxError(f"{name} must be positive integer widths, got {widths!r}.")
        require(
            self,
            learning_rate=(lambda v: v > 0, "> 0"),
            gamma=(lambda v: 0 < v < 1, "in (0, 1)"),
        )
        self._check_goal_mix("actor")
        if hasattr(self, "value_p_curgoal"):
            self._check_goal_mix("value")
        optional = {
            "expectile": (lambda v: 0.0 < v < 1.0, "in (0, 1)"),
            "tau": (lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
            "alpha": (lambda v: v >= 0.0, ">= 0"),
        }
        require(self, **{k: rule for k, rule in optional.items() if hasattr(self, k)})

    def _check_goal_mix(self, who: str) -> None:
        """Goal-sampling probabilities in [0, 1] with ``p_cur + p_traj <= 1``."""
        unit = (lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]")
        cur, traj = f"{who}_p_curgoal", f"{who}_p_trajgoal"
        require(self, **{cur: unit, traj: unit})
        total = np.asarray(getattr(self, cur), np.float64) + np.asarray(getattr(self, traj))
        if np.any(total > 1.0 + 1e-6):
            raise RlxError(
                f"{cur} + {traj} must be <= 1 (the rest is random goals), got "
                f"{getattr(self, cur)} + {getattr(self, traj)}."
            )


@flax.struct.dataclass
class ValueNet:
    """A value network."""

    value_hidden: tuple[int, ...] = static((512, 512, 512), "Value MLP hidden widths.")
    layer_norm: bool = static(True, "LayerNorm after each value hidden layer.")


@flax.struct.dataclass
class ValueGoalShape:
    """How later-in-trajectory value goals are drawn."""

    value_geom_sample: bool = static(True, "Value goals: geometric (True) or uniform future.")


@flax.struct.dataclass
class ValueGoalMix:
    """Which value goals are drawn (OGBench's GCDataset; p_random is the rest)."""

    value_p_curgoal: float = hparam(0.2, "Value goals: probability of the current state.")
    value_p_trajgoal: float = hparam(0.5, "Value goals: probability of a later state.")


@flax.struct.dataclass
class TargetNet:
    """Polyak-averaged target networks."""

    tau: float = hparam(0.005, "Polyak rate of the target networks.")


@flax.struct.dataclass
class Expectile:
    """An expectile regression."""

    expectile: float = hparam(0.9, "Expectile tau in (0, 1) (0.5: a mean).")


@flax.struct.dataclass
class BCWeight:
    """Policy extraction with a behaviour-cloning weight or temperature."""

    alpha: float = hparam(1.0, "BC coefficient (DDPG+BC) or AWR temperature.")


@flax.struct.dataclass
class GCBatch:
    """One relabelled minibatch: transitions (s, a, s') with value and actor goals."""

    observations: jax.Array
    actions: jax.Array
    next_observations: jax.Array
    value_goals: jax.Array
    actor_goals: jax.Array
    successes: jax.Array
    """1.0 where the value goal is the current state (OGBench's reward is successes - 1 and its
    mask 1 - successes)."""


@flax.struct.dataclass
class GCState:
    """Everything a run carries: params and targets by module, Adam moments, RNG, counter."""

    config: Any
    params: Params
    targets: Params
    opt_state: optax.OptState
    key: jax.Array
    update_step: jax.Array


def dataset(assets: Assets, who: str) -> Mapping[str, jax.Array]:
    """The ``"dataset"`` asset, or an RlxError naming the learner."""
    if not assets or "dataset" not in assets:
        raise RlxError(
            f"{who} needs a 'dataset' asset (rlx dataset make); give --asset dataset=PATH."
        )
    return assets["dataset"]


def sample_batch(
    data: Mapping[str, jax.Array], key: jax.Array, config: Any, layout: GoalLayout
) -> tuple[GCBatch, jax.Array, jax.Array]:
    """A `GCBatch` of ``config.batch_size`` valid rows with relabelled goals, plus the rows and
    value-goal rows (TRL draws its midpoints from them). Value goals follow the config's
    ``value_*`` mixture (in-trajectory geometric goals where it has none)."""
    k_rows, k_value, k_actor = jax.random.split(key, 3)
    rows = goal_sampling.sample_rows(k_rows, data["valid"], config.batch_size)
    size, ends, gamma = data["observations"].shape[0], data["traj_end"], config.gamma
    value_rows = goal_sampling.goal_rows(
        k_value, rows, ends, size, getattr(config, "value_p_curgoal", 0.0),
        getattr(config, "value_p_trajgoal", 1.0), gamma, getattr(config, "value_geom_sample", True),
    )  # fmt: skip
    actor_rows = goal_sampling.goal_rows(
        k_actor, rows, ends, size, config.actor_p_curgoal, config.actor_p_trajgoal, gamma,
        config.actor_geom_sample,
    )  # fmt: skip
    obs = data["observations"]
    batch = GCBatch(
        observations=obs[rows],
        actions=data["actions"][rows],
        next_observations=data["next_observations"][rows],
        value_goals=layout.goal_of(obs[value_rows]),
        actor_goals=layout.goal_of(obs[actor_rows]),
        successes=(rows == value_rows).astype(jnp.float32),
    )
    return batch, rows, value_rows


Loss = Callable[[Params, Params, Any, Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]
"""``loss(params, targets, batch, config, key) -> (total loss, metrics)``."""
Sampler = Callable[[Mapping[str, jax.Array], jax.Array, Any, GoalLayout], Any]
"""``sampler(data, key, config, layout) -> batch``."""


def make_update(loss: Loss, who: str, sampler: Sampler | None = None):
    """The ``update(env, state, assets)`` of a learner: ``grad_steps_per_update`` Adam steps on
    `loss` over batches of `sampler` (default `sample_batch`), every target module Polyak-
    averaged after each step; metrics are the mean over the steps."""
    sample = sampler or (lambda d, k, c, lay: sample_batch(d, k, c, lay)[0])
    grad_fn = jax.value_and_grad(loss, has_aux=True)

    def update(env: Env, state: GCState, assets: Assets = None) -> tuple[GCState, dict]:
        config, data = state.config, dataset(assets, who)
        layout = require_goal_layout(env, who)
        key, k_steps = jax.random.split(state.key)

        def _grad_step(carry: tuple[Params, Params, optax.OptState], step_key: jax.Array):
            params, targets, opt_state = carry
            k_batch, k_loss = jax.random.split(step_key)
            batch = sample(data, k_batch, config, layout)
            (_, metrics), grads = grad_fn(params, targets, batch, config, k_loss)
            params, opt_state = adam_step(params, grads, opt_state, config.learning_rate)
            targets = {n: polyak(t, params[n], config.tau) for n, t in targets.items()}
            return (params, targets, opt_state), metrics

        keys = jax.random.split(k_steps, config.grad_steps_per_update)
        carry = (state.params, state.targets, state.opt_state)
        (params, targets, opt_state), info = jax.lax.scan(_grad_step, carry, keys)
        new = state.replace(params=params, targets=targets, opt_state=opt_state, key=key,
                            update_step=state.update_step + 1)  # fmt: skip
        return new, {name: values.mean() for name, values in info.items()}

    return update


def new_state(
    config: Any, params: Params, target_names: tuple[str, ...], key: jax.Array
) -> GCState:
    """A fresh state: Adam moments for `params`, targets = copies of the named modules."""
    return GCState(
        config=config,
        params=params,
        targets={name: params[name] for name in target_names},
        opt_state=optax.scale_by_adam().init(params),
        key=key,
        update_step=jnp.zeros((), jnp.int32),
    )


def actor_module(env: Env, config: Any) -> GCActor:
    """The learner's actor network."""
    return GCActor(config.actor_hidden, env.action_size, config.actor_layer_norm)


def init_actor(key: jax.Array, env: Env, config: Any) -> Any:
    """Initial actor parameters."""
    layout = require_goal_layout(env, "an offline goal-conditioned learner")
    s, g = jnp.zeros((layout.state_size,)), jnp.zeros((layout.goal_size,))
    return actor_module(env, config).init(key, s, g)


def policy_params(state: GCState) -> dict[str, Any]:
    """What the trained policy needs: the actor's parameters."""
    return {"actor": state.params["actor"]}


def make_policy(params: dict[str, Any], env: Env, config: Any) -> Callable[..., jax.Array]:
    """``act(obs, key, deterministic)``: the actor's mode ``clip(mu(s, g), -1, 1)`` with
    ``(s, g)`` split from the observation; with ``deterministic=False`` a sample of
    ``N(mu, I)``, clipped."""
    net = actor_module(env, config)
    layout = require_goal_layout(env, "an offline goal-conditioned policy")

    def act(obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
        s, g = layout.split(obs)
        mean = net.apply(params["actor"], s, g)
        if not deterministic:
            mean = mean + jax.random.normal(key, mean.shape)
        return jnp.clip(mean, -1.0, 1.0)

    return act


def actor_log_prob(
    params: Params, config: Any, s: jax.Array, g: jax.Array, a: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(mean mu(s, g) [B, A], log N(a; mu, I) [B]) of the actor on a batch of dataset actions
    `a` [B, A]."""
    net = GCActor(config.actor_hidden, a.shape[-1], config.actor_layer_norm)
    mean = net.apply(params["actor"], s, g)
    return mean, unit_gaussian_log_prob(mean, a)


def combine(*terms: tuple[jax.Array, dict[str, jax.Array]]) -> tuple[jax.Array, dict]:
    """The sum of a learner's loss terms ``(loss, metrics)`` and their merged metrics (its
    modules share one optimiser, as in OGBench)."""
    total = sum(loss for loss, _ in terms)
    return total, {k: v for _, info in terms for k, v in info.items()}


def bce_with_logits(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Binary cross-entropy of ``sigmoid(logits)`` against (soft) targets in [0, 1]:
    ``-(y log sigma(f) + (1 - y) log(1 - sigma(f)))``, elementwise."""
    chex.assert_equal_shape([logits, target])
    return -(target * jax.nn.log_sigmoid(logits) + (1.0 - target) * jax.nn.log_sigmoid(-logits))


def ddpg_bc_loss(q: jax.Array, log_prob: jax.Array, alpha: jax.Array) -> tuple[jax.Array, dict]:
    """DDPG+BC (OGBench): ``-mean(q) / sg(mean|q|) - alpha mean(log pi(a_data | s, g))``, with
    `q` the critic at the actor's clipped mode ``[B]`` (Q normalised so that alpha is scale-free)."""
    q_loss = -q.mean() / jax.lax.stop_gradient(jnp.abs(q).mean() + 1e-6)
    bc_loss = -(alpha * log_prob).mean()
    return q_loss + bc_loss, {"actor/q_loss": q_loss, "actor/bc_loss": bc_loss,
                              "actor/q_mean": q.mean()}  # fmt: skip


def awr_loss(advantage: jax.Array, log_prob: jax.Array, alpha: jax.Array) -> tuple[jax.Array, dict]:
    """AWR (OGBench): ``-mean(min(exp(alpha A), 100) log pi(a_data | s, g))``."""
    weight = jnp.minimum(jnp.exp(alpha * jax.lax.stop_gradient(advantage)), 100.0)
    return -(weight * log_prob).mean(), {"actor/adv_mean": advantage.mean(),
                                         "actor/weight_mean": weight.mean()}  # fmt: skip


def check_env(env: Env, config: Any) -> None:
    """Offline goal-conditioned learners need a goal-conditioned env."""
    require_goal_layout(env, "an offline goal-conditioned algorithm")


ASSETS = {"dataset": DATASET, "distances": va.DISTANCES}


def loss_rules(names: Mapping[str, str]) -> dict[str, MetricRule]:
    """Metric rules of a learner's training metrics: name -> table label."""
    return {name: MetricRule(label=label) for name, label in names.items()}


def algorithm(
    name: str, description: str, config_cls: type, init: Callable, loss: Loss,
    metrics: Mapping[str, str], distance: Mapping[str, va.Estimator] | None = None,
    calibrated: bool = True, sampler: Sampler | None = None,
) -> Algorithm:  # fmt: skip
    """The `rlx.algorithm.Algorithm` record of an offline goal-conditioned learner: its update
    from `loss`, the shared policy, assets and, when it has implied-distance read-outs
    `distance` (name -> `rlx.algos.offline_gc.value_accuracy.Estimator`, the first one
    primary), the value-accuracy diagnostics. No record defaults: ``config_cls()`` is the
    published setting."""
    rules = loss_rules(metrics)
    if distance is not None:
        rules.update(va.rules(list(distance), calibrated))
    return Algorithm(
        name=name,
        description=description,
        Config=config_cls,
        init=init,
        update=make_update(loss, name, sampler),
        policy_params=policy_params,
        make_policy=make_policy,
        check_env=check_env,
        unit=Unit.GRADIENT_STEPS,
        metric_rules=lambda env: rules,
        assets=ASSETS if distance is not None else {"dataset": DATASET},
        diagnostics=va.diagnostics(distance, calibrated) if distance is not None else None,
    )


def distance_from_value(v: jax.Array, gamma: jax.Array) -> jax.Array:
    """The distance implied by a value of the reward ``-1`` per step until the goal:
    ``V = -(1 - gamma^d) / (1 - gamma)``, so ``d = log(1 + (1 - gamma) V) / log gamma`` (the
    argument floored at 1e-6: values below the bound ``-1 / (1 - gamma)`` read as far)."""
    return jnp.log(jnp.maximum(1.0 + (1.0 - gamma) * v, 1e-6)) / jnp.log(gamma)


def expectile_loss(diff: jax.Array, sign: jax.Array, tau: jax.Array) -> jax.Array:
    """``|tau - 1(sign < 0)| diff^2``, elementwise: IQL's asymmetric square, its weight chosen
    by the sign of `sign` (the advantage; `diff` itself for a plain expectile)."""
    weight = jnp.where(sign >= 0, tau, 1.0 - tau)
    return weight * diff**2


def policy_actions(state: GCState, env: Env, states: jax.Array, goals: jax.Array) -> jax.Array:
    """The trained policy's actions ``clip(mu(s, g), -1, 1)`` for batches of states and goals."""
    act = make_policy(policy_params(state), env, state.config)
    return jax.vmap(lambda s, g: act(jnp.concatenate([s, g]), None))(states, goals)
