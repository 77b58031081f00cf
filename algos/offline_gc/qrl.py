"""Quasimetric RL (QRL; Wang et al. 2023, OGBench's ``impls/agents/qrl.py``): the distance is
an interval quasimetric embedding (IQE) ``d(s, g) = IQE(phi(s), phi(g))``, pushed apart for
random pairs while one-step pairs are held within one step by a Lagrange multiplier, and the
policy is extracted through a learned latent dynamics model.

With ``r = 1(s = g) - 1`` (about -1: value goals are random states)::

    L_d   = mean 100 softplus(5 - d(s, g_random) / 100) + sg(lambda) mean relu(d(s, s') + r)^2
    L_lam = lambda (eps - sg(mean relu(d(s, s') + r)^2))              (dual ascent on lambda)
    L_dyn = mean (d(phi(s'), z') + d(z', phi(s'))) / 2,   z' = phi(s) + T(phi(s), a)
    L_pi  = -mean(q) / sg(mean|q|) - alpha mean log pi(a | s, g),
            q = -d(z'(s, clip(mu)), phi(g)) with phi, T held fixed

IQE: latent 512 in components of 8 intervals, ``alpha_iqe = sigmoid(a)`` (learned) mixing the
mean and max of the components (`rlx.algos.offline_gc.nets.iqe`); lambda = exp(log_lambda), initially 1.
``Config()`` is OGBench's pointmaze setting (``impls/hyperparameters.sh``: eps 0.05, alpha
0.0003, latent 512, value goals random, actor goals from the trajectory, uniform; 3x512 MLPs,
LayerNorm in phi and T, batch 1024), which OGBench uses on every pointmaze size except gamma,
0.995 on giant (set per cell by sweeps/trl.toml; QRL's gamma only shapes goal sampling). ``d``
is in env steps, so value accuracy reads it directly.
"""

from __future__ import annotations

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos.offline_gc import common as gc
from rlx.algos.offline_gc.nets import LayerNormMLP, iqe
from rlx.envs.goals import require_goal_layout

from rlx.config import hparam, require, static
from rlx.data.assets import Assets
from rlx.errors import RlxError


@flax.struct.dataclass
class Config(gc.BCWeight, gc.ValueGoalMix, gc.ValueGoalShape, gc.ValueNet, gc.GCConfig):
    """QRL settings; the defaults are OGBench's pointmaze ones (the module docstring; rlx list
    qrl shows each field's default and doc)."""

    value_p_curgoal: float = gc.with_default(gc.ValueGoalMix, "value_p_curgoal", 0.0)
    value_p_trajgoal: float = gc.with_default(gc.ValueGoalMix, "value_p_trajgoal", 0.0)
    alpha: float = gc.with_default(gc.BCWeight, "alpha", 0.0003)

    latent_dim: int = static(512, "Latent width of phi (a multiple of iqe_component).")
    iqe_component: int = static(8, "Intervals per IQE component.")
    eps: float = hparam(0.05, "Constraint margin: mean relu(d(s, s') - 1)^2 <= eps.")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        super().validate()
        if self.iqe_component <= 0 or self.latent_dim % self.iqe_component:
            raise RlxError(f"latent_dim={self.latent_dim} must be a positive multiple of "
                           f"iqe_component={self.iqe_component}.")  # fmt: skip
        require(self, eps=(lambda v: v > 0.0, "> 0"))


class Quasimetric(nn.Module):
    """phi(s) and the learned IQE mixing weight; ``__call__`` encodes, `distance` compares."""

    hidden: tuple[int, ...]
    latent: int
    component: int
    layer_norm: bool = True

    def setup(self) -> None:
        self.phi = LayerNormMLP(self.hidden, self.latent, self.layer_norm)
        self.mix = self.param("mix", nn.initializers.zeros, ())

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.phi(x)

    def distance(self, zx: jax.Array, zy: jax.Array) -> jax.Array:
        """IQE(zx, zy) with alpha = sigmoid(mix)."""
        return iqe(zx, zy, self.component, jax.nn.sigmoid(self.mix))


def _nets(config: Config) -> tuple[Quasimetric, LayerNormMLP]:
    """(quasimetric value, latent dynamics T(z, a) -> dz)."""
    qm = Quasimetric(config.value_hidden, config.latent_dim, config.iqe_component,
                     config.layer_norm)  # fmt: skip
    return qm, LayerNormMLP(config.value_hidden, config.latent_dim, config.layer_norm)


def _dist(qm: Quasimetric, params, zx: jax.Array, zy: jax.Array) -> jax.Array:
    return qm.apply(params, zx, zy, method=Quasimetric.distance)


def value_losses(params: gc.Params, b: gc.GCBatch, config: Config):
    """L_d + L_lam + L_dyn of the module docstring."""
    qm, dyn = _nets(config)
    # One encoder pass over [s; s'; g] (larger matmuls run faster than three small ones).
    stacked = jnp.concatenate([b.observations, b.next_observations, b.value_goals])
    z, z_next, z_goal = jnp.split(qm.apply(params["value"], stacked), 3)
    lam = jnp.exp(params["log_lambda"])
    d_neg = _dist(qm, params["value"], z, z_goal)
    d_pos = _dist(qm, params["value"], z, z_next)
    neg_loss = (100.0 * jax.nn.softplus(5.0 - d_neg / 100.0)).mean()
    pos_loss = (jax.nn.relu(d_pos + b.successes - 1.0) ** 2).mean()
    value_loss = neg_loss + pos_loss * jax.lax.stop_gradient(lam)
    lam_loss = lam * (config.eps - jax.lax.stop_gradient(pos_loss))
    predicted = z + dyn.apply(params["dynamics"], jnp.concatenate([z, b.actions], axis=-1))
    dyn_loss = (_dist(qm, params["value"], z_next, predicted)
                + _dist(qm, params["value"], predicted, z_next)).mean() / 2  # fmt: skip
    return value_loss + lam_loss + dyn_loss, {
        "value/d_neg": d_neg.mean(), "value/d_pos": d_pos.mean(), "value/pos_loss": pos_loss,
        "value/lambda": lam, "dynamics/loss": dyn_loss,
    }  # fmt: skip


def actor_loss(params: gc.Params, b: gc.GCBatch, config: Config):
    """DDPG+BC through the latent dynamics (value and dynamics held fixed)."""
    qm, dyn = _nets(config)
    value, dynamics = jax.lax.stop_gradient((params["value"], params["dynamics"]))
    mean, log_prob = gc.actor_log_prob(params, config, b.observations, b.actor_goals, b.actions)
    z, z_goal = jnp.split(qm.apply(value, jnp.concatenate([b.observations, b.actor_goals])), 2)
    predicted = z + dyn.apply(dynamics, jnp.concatenate([z, jnp.clip(mean, -1, 1)], axis=-1))
    return gc.ddpg_bc_loss(-_dist(qm, value, predicted, z_goal), log_prob, config.alpha)


def loss(params: gc.Params, targets: gc.Params, batch: gc.GCBatch, config: Config, key: jax.Array):
    """Value, multiplier, dynamics and actor losses (one optimiser)."""
    return gc.combine(value_losses(params, batch, config), actor_loss(params, batch, config))


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> gc.GCState:
    """Actor, quasimetric and dynamics parameters, log lambda = 0, Adam moments."""
    layout = require_goal_layout(env, "qrl")
    k_actor, k_value, k_dyn, k_state = jax.random.split(key, 4)
    qm, dyn = _nets(config)
    params = {
        "actor": gc.init_actor(k_actor, env, config),
        "value": qm.init(k_value, jnp.zeros((layout.state_size,))),
        "dynamics": dyn.init(k_dyn, jnp.zeros((config.latent_dim + env.action_size,))),
        "log_lambda": jnp.zeros((), jnp.float32),
    }
    return gc.new_state(config, params, (), k_state)


def implied_distance(state: gc.GCState, env: Env, states, goals, actions) -> jax.Array:
    """The learned quasimetric d(s, g) (`actions` unused). Its unit is one *dataset*
    transition (QRL constrains d(s, s') <= 1 on the data), not a discounted value: far bins
    are not compressed by a discount as a V or Q read-out's are."""
    qm, _ = _nets(state.config)
    value = state.params["value"]
    return _dist(qm, value, qm.apply(value, states), qm.apply(value, goals))


ALGORITHM = gc.algorithm(
    "qrl", "Quasimetric RL (offline GCRL, OGBench): IQE distance, latent dynamics, DDPG+BC.",
    Config, init, loss,
    metrics={"value/d_neg": "d to random goals", "value/d_pos": "d one step",
             "value/pos_loss": "constraint", "value/lambda": "lambda",
             "dynamics/loss": "dynamics loss", "actor/q_loss": "actor Q loss",
             "actor/bc_loss": "actor BC loss", "actor/q_mean": "actor Q"},
    distance={"d": implied_distance},
)  # fmt: skip
"""QRL with OGBench's pointmaze settings."""
