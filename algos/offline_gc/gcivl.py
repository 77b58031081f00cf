"""Goal-conditioned implicit V-learning (GCIVL; OGBench's baseline, ``gciql.py`` with
``use_q=False``): an action-free expectile value and advantage-weighted regression.

With ``r = 1(s = g) - 1`` and ``m = 1 - 1(s = g)``, two value members with Polyak targets::

    A   = r + gamma m min_m Vbar_m(s', g) - mean_m Vbar_m(s, g)        (shared advantage)
    L_V = E[ sum_m |tau - 1(A < 0)| (r + gamma m Vbar_m(s', g) - V_m(s, g))^2 ]
    L_pi = -E[ min(exp(alpha (V(s', g) - V(s, g))), 100) log pi(a | s, g) ],  V = mean_m V_m

``Config()`` is OGBench's pointmaze setting (``impls/hyperparameters.sh``: expectile 0.9, AWR
temperature alpha 10, gamma 0.99, value goals current 0.2 / trajectory (geometric) 0.5 / random
0.3, actor goals from the trajectory, uniform; 3x512 MLPs, LayerNorm in the value nets, batch
1024), which OGBench uses on every pointmaze size except gamma, 0.995 on giant (set per cell by
sweeps/trl.toml).
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
    """GCIVL settings; the defaults are OGBench's pointmaze ones (the module docstring; rlx
    list gcivl shows each field's default and doc)."""

    alpha: float = gc.with_default(gc.BCWeight, "alpha", 10.0)


def _value(config: Config) -> GCValue:
    return GCValue(config.value_hidden, members=2, layer_norm=config.layer_norm)


def value_loss(params: gc.Params, targets: gc.Params, b: gc.GCBatch, config: Config):
    """L_V of the module docstring."""
    net = _value(config)
    reward, mask = b.successes - 1.0, 1.0 - b.successes
    next_bar = net.apply(targets["value"], b.next_observations, b.value_goals)  # [2, B]
    v_bar = net.apply(targets["value"], b.observations, b.value_goals).mean(axis=0)
    advantage = reward + config.gamma * mask * next_bar.min(axis=0) - v_bar
    q_members = reward + config.gamma * mask * next_bar
    v = net.apply(params["value"], b.observations, b.value_goals)
    loss = gc.expectile_loss(q_members - v, advantage, config.expectile).sum(axis=0).mean()
    return loss, {"value/loss": loss, "value/v_mean": v.mean()}


def actor_loss(params: gc.Params, b: gc.GCBatch, config: Config):
    """AWR with the one-step advantage V(s', g) - V(s, g) (value held fixed)."""
    net, value = _value(config), jax.lax.stop_gradient(params["value"])
    v = net.apply(value, b.observations, b.actor_goals).mean(axis=0)
    next_v = net.apply(value, b.next_observations, b.actor_goals).mean(axis=0)
    _, log_prob = gc.actor_log_prob(params, config, b.observations, b.actor_goals, b.actions)
    return gc.awr_loss(next_v - v, log_prob, config.alpha)


def loss(params: gc.Params, targets: gc.Params, batch: gc.GCBatch, config: Config, key: jax.Array):
    """Value + actor losses (one optimiser)."""
    return gc.combine(value_loss(params, targets, batch, config), actor_loss(params, batch, config))


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> gc.GCState:
    """Actor and value parameters, the value's target copy, Adam moments."""
    layout = require_goal_layout(env, "gcivl")
    k_actor, k_value, k_state = jax.random.split(key, 3)
    s, g = jnp.zeros((layout.state_size,)), jnp.zeros((layout.goal_size,))
    params = {"actor": gc.init_actor(k_actor, env, config),
              "value": _value(config).init(k_value, s, g)}  # fmt: skip
    return gc.new_state(config, params, ("value",), k_state)


def implied_distance(state: gc.GCState, env: Env, states, goals, actions) -> jax.Array:
    """The distance implied by the members' mean V(s, g) (`actions` unused)."""
    v = _value(state.config).apply(state.params["value"], states, goals).mean(axis=0)
    return gc.distance_from_value(v, state.config.gamma)


ALGORITHM = gc.algorithm(
    "gcivl", "Goal-conditioned IVL (offline GCRL, OGBench): expectile V, AWR.",
    Config, init, loss,
    metrics={"value/loss": "value loss", "value/v_mean": "mean V",
             "actor/adv_mean": "mean advantage", "actor/weight_mean": "mean AWR weight"},
    distance={"v": implied_distance},
)  # fmt: skip
"""GCIVL with OGBench's pointmaze settings."""
