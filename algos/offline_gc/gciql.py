"""Goal-conditioned IQL (GCIQL; OGBench's baseline, Park et al. 2024 ``impls/agents/gciql.py``):
one-step TD with an in-sample expectile value, and DDPG+BC policy extraction.

With OGBench's goal-conditioned reward ``r = 1(s = g) - 1`` and mask ``m = 1 - 1(s = g)``
(`rlx.algos.offline_gc.common.GCBatch.successes`)::

    L_V = E[ |tau - 1(Qbar - V < 0)| (Qbar - V)^2 ],     Qbar = min_m Qbar_m(s, a, g)  (targets)
    L_Q = E[ sum_m (Q_m(s, a, g) - (r + gamma m sg(V(s', g))))^2 ]
    L_pi = -mean(q) / sg(mean|q|) - alpha mean log pi(a | s, g),   q = min_m Q_m(s, clip(mu), g)

Q is an ensemble of two with Polyak targets; V a single network. ``Config()`` is OGBench's
pointmaze setting (``impls/hyperparameters.sh``: expectile 0.9, alpha 0.003, gamma 0.99, value
goals current 0.2 / trajectory (geometric) 0.5 / random 0.3, actor goals from the trajectory,
uniform; 3x512 MLPs, LayerNorm in the value nets, batch 1024), which OGBench uses on every
pointmaze size except gamma, 0.995 on giant (set per cell by sweeps/trl.toml). The implied
distance for value accuracy inverts ``V = -(1 - gamma^d) / (1 - gamma)`` (`rlx.algos.offline_gc.common.distance_from_value`).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos.offline_gc import common as gc
from rlx.algos.offline_gc.nets import GCValue
from rlx.envs.goals import require_goal_layout

from rlx.data.assets import Assets


@flax.struct.dataclass
class Config(gc.BCWeight, gc.Expectile, gc.TargetNet, gc.ValueGoalMix, gc.ValueGoalShape,
             gc.ValueNet, gc.GCConfig):  # fmt: skip
    """GCIQL settings; the defaults are OGBench's pointmaze ones (the module docstring; rlx
    list gciql shows each field's default and doc)."""

    alpha: float = gc.with_default(gc.BCWeight, "alpha", 0.003)


def _nets(config: Config) -> tuple[GCValue, GCValue]:
    """(value V(s, g), critic ensemble Q_m(s, a, g))."""
    return (GCValue(config.value_hidden, members=1, layer_norm=config.layer_norm),
            GCValue(config.value_hidden, members=2, layer_norm=config.layer_norm))  # fmt: skip


def value_and_critic_loss(params: gc.Params, targets: gc.Params, b: gc.GCBatch, config: Config):
    """L_V + L_Q of the module docstring."""
    value, critic = _nets(config)
    reward, mask = b.successes - 1.0, 1.0 - b.successes
    q_bar = critic.apply(targets["critic"], b.observations, b.value_goals, b.actions).min(axis=0)
    v = value.apply(params["value"], b.observations, b.value_goals)
    value_loss = gc.expectile_loss(q_bar - v, q_bar - v, config.expectile).mean()
    next_v = jax.lax.stop_gradient(value.apply(params["value"], b.next_observations, b.value_goals))
    td_target = reward + config.gamma * mask * next_v
    q = critic.apply(params["critic"], b.observations, b.value_goals, b.actions)
    critic_loss = ((q - td_target) ** 2).sum(axis=0).mean()
    return value_loss + critic_loss, {"value/loss": value_loss, "value/v_mean": v.mean(),
                                      "critic/loss": critic_loss}  # fmt: skip


def actor_loss(params: gc.Params, b: gc.GCBatch, config: Config):
    """DDPG+BC on min_m Q_m at the actor's clipped mode (critic held fixed)."""
    mean, log_prob = gc.actor_log_prob(params, config, b.observations, b.actor_goals, b.actions)
    critic = jax.lax.stop_gradient(params["critic"])
    q = _nets(config)[1].apply(critic, b.observations, b.actor_goals, jnp.clip(mean, -1, 1))
    return gc.ddpg_bc_loss(q.min(axis=0), log_prob, config.alpha)


def loss(params: gc.Params, targets: gc.Params, batch: gc.GCBatch, config: Config, key: jax.Array):
    """Value + critic + actor losses (one optimiser, as OGBench)."""
    return gc.combine(value_and_critic_loss(params, targets, batch, config),
                      actor_loss(params, batch, config))  # fmt: skip


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> gc.GCState:
    """Actor, value and critic parameters, the critic's target copy, Adam moments."""
    layout = require_goal_layout(env, "gciql")
    k_actor, k_value, k_critic, k_state = jax.random.split(key, 4)
    s, g = jnp.zeros((layout.state_size,)), jnp.zeros((layout.goal_size,))
    value, critic = _nets(config)
    params = {
        "actor": gc.init_actor(k_actor, env, config),
        "value": value.init(k_value, s, g),
        "critic": critic.init(k_critic, s, g, jnp.zeros((env.action_size,))),
    }
    return gc.new_state(config, params, ("critic",), k_state)


def implied_distance(state: gc.GCState, env: Env, states, goals, actions) -> jax.Array:
    """The distance implied by the action-free V(s, g) (one network; `actions` unused)."""
    v = _nets(state.config)[0].apply(state.params["value"], states, goals)
    return gc.distance_from_value(v, state.config.gamma)


ALGORITHM = gc.algorithm(
    "gciql", "Goal-conditioned IQL (offline GCRL, OGBench): expectile V, TD Q, DDPG+BC.",
    Config, init, loss,
    metrics={"value/loss": "value loss", "value/v_mean": "mean V", "critic/loss": "critic loss",
             "actor/q_loss": "actor Q loss", "actor/bc_loss": "actor BC loss",
             "actor/q_mean": "actor Q"},
    distance={"v": implied_distance},
)  # fmt: skip
"""GCIQL with OGBench's pointmaze settings."""
