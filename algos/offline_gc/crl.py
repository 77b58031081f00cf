"""Contrastive RL (CRL; Eysenbach et al. 2022, OGBench's ``impls/agents/crl.py``): a critic
learned by binary noise-contrastive estimation, and DDPG+BC policy extraction.

The critic is ``f_m(s, a, g) = phi_m(s, a)^T psi_m(g) / sqrt(d)`` (two members, latent d). On a
batch whose goals ``g_j`` are future states of row j's trajectory (geometric), row i's own goal
is its positive and the other rows' goals are negatives::

    L_f = mean_{m, i, j} BCE(f_m(s_i, a_i, g_j), 1(i = j))
    L_pi = -mean(q) / sg(mean|q|) - alpha mean log pi(a | s, g),   q = min_m f_m(s, clip(mu), g)

``f`` estimates ``log p(g | s, a) / p(g)`` (up to a constant), a monotone but uncalibrated
function of the distance: value accuracy reports its rank correlation only (with
``d_hat = -f``). ``Config()`` is OGBench's pointmaze setting (``impls/hyperparameters.sh``:
alpha 0.03, latent 512, gamma 0.99, value goals from the trajectory, geometric; actor goals from
the trajectory, uniform; 3x512 MLPs, LayerNorm in phi and psi, batch 1024), which OGBench uses
on every pointmaze size except gamma, 0.995 on giant (set per cell by sweeps/trl.toml).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos.offline_gc import common as gc
from rlx.algos.offline_gc.nets import Bilinear
from rlx.envs.goals import require_goal_layout

from rlx.config import static
from rlx.data.assets import Assets


@flax.struct.dataclass
class Config(gc.BCWeight, gc.ValueGoalMix, gc.ValueGoalShape, gc.ValueNet, gc.GCConfig):
    """CRL settings; the defaults are OGBench's pointmaze ones (the module docstring; rlx list
    crl shows each field's default and doc)."""

    value_p_curgoal: float = gc.with_default(gc.ValueGoalMix, "value_p_curgoal", 0.0)
    value_p_trajgoal: float = gc.with_default(gc.ValueGoalMix, "value_p_trajgoal", 1.0)
    alpha: float = gc.with_default(gc.BCWeight, "alpha", 0.03)

    latent_dim: int = static(512, "Dimension d of phi(s, a) and psi(g).")


def _critic(config: Config) -> Bilinear:
    return Bilinear(config.value_hidden, config.latent_dim, members=2, layer_norm=config.layer_norm)


def critic_loss(params: gc.Params, b: gc.GCBatch, config: Config):
    """Binary NCE over every (row, goal) pair of the batch."""
    logits = _critic(config).apply(params["critic"], b.observations, b.actions, b.value_goals,
                                   matrix=True)  # [2, B, B]  # fmt: skip
    labels = jnp.broadcast_to(jnp.eye(logits.shape[-1]), logits.shape)
    loss = gc.bce_with_logits(logits, labels).mean()
    n = logits.shape[-1]
    positive = jnp.diagonal(logits, axis1=1, axis2=2).mean()
    negative = (logits.mean() * n * n - positive * n) / (n * (n - 1))
    accuracy = (jnp.argmax(logits, axis=-1) == jnp.arange(n)).mean()
    return loss, {"critic/loss": loss, "critic/logits_pos": positive,
                  "critic/logits_neg": negative, "critic/accuracy": accuracy}  # fmt: skip


def actor_loss(params: gc.Params, b: gc.GCBatch, config: Config):
    """DDPG+BC on min_m f_m at the actor's clipped mode (critic held fixed)."""
    mean, log_prob = gc.actor_log_prob(params, config, b.observations, b.actor_goals, b.actions)
    critic = jax.lax.stop_gradient(params["critic"])
    q = _critic(config).apply(critic, b.observations, jnp.clip(mean, -1, 1), b.actor_goals)
    return gc.ddpg_bc_loss(q.min(axis=0), log_prob, config.alpha)


def loss(params: gc.Params, targets: gc.Params, batch: gc.GCBatch, config: Config, key: jax.Array):
    """Critic + actor losses (one optimiser)."""
    return gc.combine(critic_loss(params, batch, config), actor_loss(params, batch, config))


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> gc.GCState:
    """Actor and critic parameters (no targets), Adam moments."""
    layout = require_goal_layout(env, "crl")
    k_actor, k_critic, k_state = jax.random.split(key, 3)
    s, g = jnp.zeros((1, layout.state_size)), jnp.zeros((1, layout.goal_size))
    a = jnp.zeros((1, env.action_size))
    params = {"actor": gc.init_actor(k_actor, env, config),
              "critic": _critic(config).init(k_critic, s, a, g)}  # fmt: skip
    return gc.new_state(config, params, (), k_state)


def critic_score(state: gc.GCState, states: jax.Array, goals: jax.Array, actions: jax.Array):
    """``-mean_m f_m(s, a, g)`` at the given actions: an uncalibrated score, to be read by rank
    only. ``f`` estimates ``log p(g | s, a) / p(g)``, so the score also carries the goal's
    density in the data: it is not monotone in the distance (a goal the data rarely visits
    scores as far as a distant one)."""
    return -_critic(state.config).apply(state.params["critic"], states, actions, goals).mean(axis=0)


def data_distance(state: gc.GCState, env: Env, states, goals, actions) -> jax.Array:
    """Critic-only read-out: `critic_score` at the dataset action."""
    return critic_score(state, states, goals, actions)


def actor_distance(state: gc.GCState, env: Env, states, goals, actions) -> jax.Array:
    """Actor read-out: `critic_score` at the trained actor's action."""
    return critic_score(state, states, goals, gc.policy_actions(state, env, states, goals))


READOUTS = {"data": data_distance, "actor": actor_distance}
"""CRL's scores (rank only): the critic at the dataset action (primary) and at the actor's."""


ALGORITHM = gc.algorithm(
    "crl", "Contrastive RL (offline GCRL, OGBench): binary-NCE critic, DDPG+BC.",
    Config, init, loss,
    metrics={"critic/loss": "NCE loss", "critic/logits_pos": "positive logit",
             "critic/logits_neg": "negative logit", "critic/accuracy": "NCE accuracy",
             "actor/q_loss": "actor Q loss", "actor/bc_loss": "actor BC loss",
             "actor/q_mean": "actor Q"},
    distance=READOUTS, calibrated=False,
)  # fmt: skip
"""CRL with OGBench's pointmaze settings."""
