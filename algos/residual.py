"""Residual RL (Johannink et al. 2019; Silver et al. 2018) on the environment's baseline
controller, with a TD3 or SAC learner: the learner's action is a correction of the baseline's,

    a = clip(pi_0(s) + a_res, -1, 1),    a_res = the learner's action,

and the replay buffer stores the residual a_res (the learner's own action). Before
``learning_starts`` the residual is uniform in [-1, 1] (baseline plus uniform noise). The
trained policy needs the baseline at run time: it is ``clip(pi_0(s) + mu(s), -1, 1)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos import sac, td3

from rlx import offpolicy


def _act(x: offpolicy.StepInput, carry, key: jax.Array):
    executed = jnp.clip(x.baseline + x.proposal, -1.0, 1.0)
    return executed, x.proposal, jnp.ones(x.proposal.shape[:1], bool), carry, {}


def _evaluate(env: Env, action: jax.Array, obs: jax.Array) -> jax.Array:
    return jnp.clip(env.baseline_policy(obs) + action, -1.0, 1.0)


RESIDUAL = offpolicy.Behaviour(
    name="residual",
    needs_baseline=True,
    init=lambda config, n, length: (),
    act=_act,
    end_episodes=lambda config, carry, done, lengths, steps: carry,
    evaluate=_evaluate,
)

TD3 = offpolicy.assemble(
    "residual_td3",
    "Residual TD3: the learner corrects the baseline controller, a = clip(pi_0(s) + a_res).",
    td3.Config,
    td3.LEARNER,
    RESIDUAL,
)
SAC = offpolicy.assemble(
    "residual_sac",
    "Residual SAC: the learner corrects the baseline controller, a = clip(pi_0(s) + a_res).",
    sac.Config,
    sac.LEARNER,
    RESIDUAL,
)
