"""Residual RL (Johannink et al. 2019; Silver et al. 2018) on the environment's baseline
controller, with a TD3 or SAC learner: the learner's action is a correction of the baseline's,

    a = clip(pi_0(s) + a_res, -1, 1),    a_res = the learner's action,

and the replay buffer stores the residual a_res (the learner's own action). Before
``learning_starts`` the residual is uniform in [-1, 1] (baseline plus uniform noise). The
trained policy needs the baseline at run time: it is ``clip(pi_0(s) + mu(s), -1, 1)``.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos import sac, td3

from rlx import offpolicy


def residual_action(baseline: jax.Array, residual: jax.Array) -> jax.Array:
    """The executed action a = clip(pi_0(s) + a_res, -1, 1)."""
    chex.assert_equal_shape([baseline, residual])
    return jnp.clip(baseline + residual, -1.0, 1.0)


class Residual(offpolicy.Memoryless):
    """Residual RL as an `rlx.offpolicy.Behaviour` (no carry)."""

    name: str = "residual"
    needs_baseline: bool = True

    def act(self, x: offpolicy.StepInput, carry: Any, key: jax.Array) -> offpolicy.BehaviourStep:
        """executed = `residual_action` (pi_0(s), proposal); stored = the proposal; keep all."""
        executed = residual_action(x.baseline, x.proposal)
        keep = jnp.ones(x.proposal.shape[:1], bool)
        return offpolicy.BehaviourStep(executed, x.proposal, keep, carry, {})

    def evaluate(self, env: Env, action: jax.Array, obs: jax.Array) -> jax.Array:
        """The trained policy clip(pi_0(s) + a, -1, 1): it needs the baseline at run time."""
        return residual_action(env.baseline_policy(obs), action)


RESIDUAL = Residual()

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
