"""Transitive RL (TRL; Park, Oberai, Atreya, Levine, "Transitive RL: Value Learning via Divide
and Conquer", arXiv 2510.22512, ICLR 2026): offline goal-conditioned value learning by the
triangle inequality instead of one-step TD.

With ``Q(s, a, g) = gamma^{d(s, a, g)}`` the shortest-path distance obeys
``d(s, g) <= d(s, w) + d(w, g)``, i.e. ``Q(s, g) >= Q(s, w) Q(w, g)``; TRL fits Q to the largest
in-sample such product. From the official code (aoberai/trl ``agents/trl.py``,
``utils/datasets.py``):

- ``Q = sigmoid(f_theta(s, a, g))``, an ensemble of two MLPs, each with a Polyak target
  ``f_bar``; no minimum over members in the target (each bootstraps from its own target);
- rows ``i`` with an in-trajectory goal ``j > i`` (geometric ``j = min(i + Geom(1 - gamma),
  end)`` or uniform) and a midpoint ``k ~ U{i, ..., j - 1}``;
- target ``y = F1 F2`` with ``F1 = gamma^{k-i}`` if ``k - i <= 1`` else
  ``sigmoid(f_bar(s_i, a_i, s_k))`` and ``F2 = gamma^{j-k}`` if ``j - k <= 1`` else
  ``sigmoid(f_bar(s_k, a_k, s_j))`` (`transitive_target`);
- loss ``mean[w_tau w_d BCE(f_theta(s_i, a_i, s_j), y)]`` with the expectile weight
  ``w_tau = tau`` if ``y >= Q`` else ``1 - tau`` (the in-sample max over midpoints,
  `expectile_weight`) and the distance weight ``w_d = (1 / (1 + sg(log y / log gamma)))^lambda``
  (short segments first, `distance_weight`);
- policy extraction by reparameterised gradients with a BC term (DDPG+BC, `ddpg_bc_loss`):
  ``-mean(q) / sg(mean|q|) - alpha mean log pi(a_data | s, g)``, ``q`` the minimum of the
  members' logits at the actor's clipped mode, actor goals from the same trajectory.

The published runs also train an "oracle" critic on OGBench's oracle goal representation and
extract the policy from it (``oracle_distill``). In the point maze the goal already *is* the
oracle representation (x, y), so that critic would be a copy of this one; it is left out.
``Config()`` is the official pointmaze-medium setting (aoberai/trl ``hyperparameters.sh``):
gamma 0.99, lambda 0.7, alpha 10, expectile 0.7, 3x512 MLPs with LayerNorm (actor too), batch
1024, Adam 3e-4, tau 0.005, value goals later in the trajectory (geometric), actor goals later
in the trajectory (uniform). The official code gives a pointmaze config for medium only: that
the large and giant mazes reuse it is our choice, with gamma 0.995 on giant taken from
OGBench's baselines (set by sweeps/trl.toml).

``update -> _grad_step -> (sample, loss -> (critic_loss -> transitive_target, expectile_weight,
distance_weight, offline_gc.bce_with_logits), actor_loss -> ddpg_bc_loss)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import chex
import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos.offline_gc import common as gc
from rlx.algos.offline_gc import goal_sampling
from rlx.algos.offline_gc.nets import GCValue
from rlx.envs.goals import GoalLayout, require_goal_layout

from rlx.config import hparam, require
from rlx.data.assets import Assets


@flax.struct.dataclass
class Config(gc.BCWeight, gc.Expectile, gc.TargetNet, gc.ValueGoalShape, gc.ValueNet, gc.GCConfig):
    """TRL settings; the defaults are TRL's pointmaze-medium ones (the module docstring; rlx
    list trl shows each field's default and doc)."""

    actor_layer_norm: bool = gc.with_default(gc.GCConfig, "actor_layer_norm", True)
    expectile: float = gc.with_default(gc.Expectile, "expectile", 0.7)
    alpha: float = gc.with_default(gc.BCWeight, "alpha", 10.0)
    lam: float = hparam(0.7, "Distance-weight exponent lambda >= 0 (0: no reweighting).")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        super().validate()
        require(self, lam=(lambda v: v >= 0.0, ">= 0"))


@flax.struct.dataclass
class TRLBatch:
    """A relabelled batch with TRL's midpoints: rows i, goals j > i, midpoints k in [i, j)."""

    base: gc.GCBatch
    midpoint_observations: jax.Array
    midpoint_actions: jax.Array
    midpoint_goals: jax.Array
    goal_offsets: jax.Array
    """j - i (float)."""
    midpoint_offsets: jax.Array
    """k - i (float)."""


def sample(
    data: Mapping[str, jax.Array], key: jax.Array, config: Config, layout: GoalLayout
) -> TRLBatch:
    """A `TRLBatch`: `offline_gc.sample_batch` with in-trajectory value goals, plus midpoints."""
    k_batch, k_mid = jax.random.split(key)
    base, rows, goals = gc.sample_batch(data, k_batch, config, layout)
    mids = goal_sampling.midpoint(k_mid, rows, goals)
    obs = data["observations"]
    return TRLBatch(
        base=base,
        midpoint_observations=obs[mids],
        midpoint_actions=data["actions"][mids],
        midpoint_goals=layout.goal_of(obs[mids]),
        goal_offsets=(goals - rows).astype(jnp.float32),
        midpoint_offsets=(mids - rows).astype(jnp.float32),
    )


def transitive_target(
    first_logits: jax.Array, second_logits: jax.Array, first_offset: jax.Array,
    second_offset: jax.Array, gamma: jax.Array,
) -> jax.Array:  # fmt: skip
    """``y = F1 F2``: each factor ``gamma^offset`` where its offset is <= 1 (the base case),
    else the sigmoid of its target logits. Logits ``[M, B]`` (members), offsets ``[B]``."""
    chex.assert_equal_shape([first_logits, second_logits])
    chex.assert_equal_shape([first_offset, second_offset])

    def factor(logits: jax.Array, offset: jax.Array) -> jax.Array:
        return jnp.where(offset <= 1, gamma**offset, jax.nn.sigmoid(logits))

    return factor(first_logits, first_offset) * factor(second_logits, second_offset)


def expectile_weight(target: jax.Array, q: jax.Array, tau: jax.Array) -> jax.Array:
    """``tau`` where ``target >= q``, else ``1 - tau``."""
    chex.assert_equal_shape([target, q])
    return jnp.where(target >= q, tau, 1.0 - tau)


def distance_weight(target: jax.Array, gamma: jax.Array, lam: jax.Array) -> jax.Array:
    """``(1 / (1 + d))^lambda`` with ``d = sg(log y / log gamma)`` the target's distance."""
    dist = jax.lax.stop_gradient(jnp.log(target) / jnp.log(gamma))
    return (1.0 / (1.0 + dist)) ** lam


def _critic(config: Config) -> GCValue:
    return GCValue(config.value_hidden, members=2, layer_norm=config.layer_norm)


def critic_loss(params: gc.Params, targets: gc.Params, batch: TRLBatch, config: Config):
    """The transitive BCE loss of the module docstring, averaged over members and batch."""
    b, net = batch.base, _critic(config)
    logits = net.apply(params["critic"], b.observations, b.value_goals, b.actions)
    # Both target factors in one pass: (s_i, a_i, g_k) and (s_k, a_k, g_j) stacked.
    cat = lambda x, y: jnp.concatenate([x, y])  # noqa: E731
    first, second = jnp.split(net.apply(
        targets["critic"], cat(b.observations, batch.midpoint_observations),
        cat(batch.midpoint_goals, b.value_goals), cat(b.actions, batch.midpoint_actions),
    ), 2, axis=-1)  # fmt: skip
    target = transitive_target(first, second, batch.midpoint_offsets,
                               batch.goal_offsets - batch.midpoint_offsets, config.gamma)  # fmt: skip
    q = jax.nn.sigmoid(logits)
    weight = expectile_weight(target, q, config.expectile) * distance_weight(
        target, config.gamma, config.lam
    )
    loss = (weight * gc.bce_with_logits(logits, target)).mean()
    return loss, {
        "critic/loss": loss,
        "critic/q_mean": q.mean(),
        "critic/target_mean": target.mean(),
    }


def actor_loss(params: gc.Params, batch: TRLBatch, config: Config):
    """DDPG+BC on the minimum of the members' logits at the actor's clipped mode (the critic is
    held fixed)."""
    b = batch.base
    mean, log_prob = gc.actor_log_prob(params, config, b.observations, b.actor_goals, b.actions)
    critic = jax.lax.stop_gradient(params["critic"])
    logits = _critic(config).apply(critic, b.observations, b.actor_goals, jnp.clip(mean, -1, 1))
    return gc.ddpg_bc_loss(logits.min(axis=0), log_prob, config.alpha)


def loss(params: gc.Params, targets: gc.Params, batch: TRLBatch, config: Config, key: jax.Array):
    """Critic loss + actor loss (one optimiser, as the official code)."""
    return gc.combine(
        critic_loss(params, targets, batch, config), actor_loss(params, batch, config)
    )


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> gc.GCState:
    """Actor and critic parameters, the critic's target copy, Adam moments."""
    layout = require_goal_layout(env, "trl")
    k_actor, k_critic, k_state = jax.random.split(key, 3)
    s, g = jnp.zeros((layout.state_size,)), jnp.zeros((layout.goal_size,))
    params = {
        "actor": gc.init_actor(k_actor, env, config),
        "critic": _critic(config).init(k_critic, s, g, jnp.zeros((env.action_size,))),
    }
    return gc.new_state(config, params, ("critic",), k_state)


def critic_distance(state: gc.GCState, states: jax.Array, goals: jax.Array, actions: jax.Array):
    """``log Q / log gamma`` with ``Q = mean_m sigmoid(f_m(s, a, g))`` (the members' mean
    probability) at the given actions."""
    logits = _critic(state.config).apply(state.params["critic"], states, goals, actions)
    return jnp.log(jax.nn.sigmoid(logits).mean(axis=0)) / jnp.log(state.config.gamma)


def data_distance(state: gc.GCState, env: Env, states, goals, actions) -> jax.Array:
    """Critic-only read-out: `critic_distance` at the dataset action."""
    return critic_distance(state, states, goals, actions)


def actor_distance(state: gc.GCState, env: Env, states, goals, actions) -> jax.Array:
    """Actor read-out: `critic_distance` at the trained actor's action ``pi(s, g)``."""
    return critic_distance(state, states, goals, gc.policy_actions(state, env, states, goals))


READOUTS = {"data": data_distance, "actor": actor_distance}
"""TRL's implied distances: the critic at the dataset action (primary) and at the actor's."""


DESCRIPTION = "Transitive RL (offline GCRL): triangle-inequality value update + DDPG+BC."

ALGORITHM = gc.algorithm(
    "trl", DESCRIPTION, Config, init, loss,
    metrics={"critic/loss": "TRL critic loss", "critic/q_mean": "mean Q",
             "critic/target_mean": "mean target", "actor/q_loss": "actor Q loss",
             "actor/bc_loss": "actor BC loss", "actor/q_mean": "actor Q (logit)"},
    distance=READOUTS, sampler=sample,
)  # fmt: skip
"""TRL with the published pointmaze-medium settings."""
