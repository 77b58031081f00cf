"""Goal-conditioned behaviour cloning (GCBC; OGBench's ``impls/agents/gcbc.py``): maximise the
likelihood of the dataset's action given the state and a goal relabelled from the same
trajectory::

    L_pi = -E[ log pi(a | s, g) ],   g a later state of the trajectory (uniform)

The policy is OGBench's Gaussian with unit standard deviation, so this is a mean squared error
on the mean. No value function: no value-accuracy metrics. ``Config()`` is OGBench's pointmaze
setting (``impls/hyperparameters.sh``: gamma 0.99, actor goals from the trajectory, uniform;
3x512 MLP, batch 1024), which OGBench uses on every pointmaze size except gamma, 0.995 on giant
(set per cell by sweeps/trl.toml).
"""

from __future__ import annotations

import jax
from brax.envs.base import Env
from rlx.algos.offline_gc import common as gc

from rlx.data.assets import Assets

Config = gc.GCConfig
"""GCBC settings: `rlx.algos.offline_gc.common.GCConfig`, whose defaults are OGBench's
pointmaze ones (rlx list gcbc shows each field's default and doc)."""


def loss(params: gc.Params, targets: gc.Params, b: gc.GCBatch, config: Config, key: jax.Array):
    """The negative log-likelihood of the dataset actions."""
    mean, log_prob = gc.actor_log_prob(params, config, b.observations, b.actor_goals, b.actions)
    nll = -log_prob.mean()
    return nll, {"actor/nll": nll, "actor/mse": ((mean - b.actions) ** 2).mean()}


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> gc.GCState:
    """Actor parameters and Adam moments."""
    k_actor, k_state = jax.random.split(key)
    return gc.new_state(config, {"actor": gc.init_actor(k_actor, env, config)}, (), k_state)


ALGORITHM = gc.algorithm(
    "gcbc", "Goal-conditioned behaviour cloning (offline GCRL, OGBench baseline).",
    Config, init, loss,
    metrics={"actor/nll": "BC negative log-likelihood", "actor/mse": "BC action MSE"},
)  # fmt: skip
"""GCBC with OGBench's defaults."""
