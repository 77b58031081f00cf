"""Residual RL (Johannink et al. 2019; Silver et al. 2018) on the environment's baseline
controller, with a TD3 or SAC learner: the learner's action is a correction of the baseline's,

    a = clip(pi_0(s) + a_res, -1, 1),    a_res = the learner's action,

and the replay buffer stores the residual a_res (the learner's own action). Before
``learning_starts`` the residual is uniform in [-1, 1] (baseline plus uniform noise). With
``warmup_baseline_twice`` (off by default) the warm-up is the official residual-TD3 script's:
its "residual" is already centred on the baseline, a_res = clip(pi_0(s) + U), so the executed
action is clip(pi_0(s) + a_res) = clip(2 pi_0(s) + U) before the clip of a_res binds. The
trained policy needs the baseline at run time: it is ``clip(pi_0(s) + mu(s), -1, 1)``.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos.offpolicy import common as offpolicy
from rlx.algos.offpolicy import sac, td3

from rlx.config import static


def residual_action(baseline: jax.Array, residual: jax.Array) -> jax.Array:
    """The executed action a = clip(pi_0(s) + a_res, -1, 1)."""
    chex.assert_equal_shape([baseline, residual])
    return jnp.clip(baseline + residual, -1.0, 1.0)


@flax.struct.dataclass
class ResidualSettings:
    """Residual-RL settings, a mixin on top of a learner's config (like agency transfer's)."""

    warmup_baseline_twice: bool = static(
        False, "Warm-up as the official residual-TD3 script: a_res = clip(pi_0(s) + U)."
    )


@flax.struct.dataclass
class TD3Config(ResidualSettings, td3.Config):
    """Residual-RL settings on top of TD3's."""


@flax.struct.dataclass
class SACConfig(ResidualSettings, sac.Config):
    """Residual-RL settings on top of SAC's."""


class Residual(offpolicy.Memoryless):
    """Residual RL as an `rlx.algos.offpolicy.common.Behaviour` (no carry)."""

    name: str = "residual"
    needs_baseline: bool = True

    def act(self, x: offpolicy.StepInput, carry: Any, key: jax.Array) -> offpolicy.BehaviourStep:
        """executed = `residual_action` (pi_0(s), a_res); stored = a_res; keep all. a_res is the
        proposal, or ``clip(pi_0(s) + U)`` in the warm-up with ``warmup_baseline_twice``."""
        res = x.proposal
        if x.config.warmup_baseline_twice:
            warm = x.env_steps < x.config.learning_starts
            res = jnp.where(warm, jnp.clip(x.baseline + res, -1.0, 1.0), res)
        keep = jnp.ones(res.shape[:1], bool)
        return offpolicy.BehaviourStep(residual_action(x.baseline, res), res, keep, carry, {})

    def evaluate(self, env: Env, action: jax.Array, obs: jax.Array) -> jax.Array:
        """The trained policy clip(pi_0(s) + a, -1, 1): it needs the baseline at run time."""
        return residual_action(env.baseline_policy(obs), action)


RESIDUAL = Residual()

TD3 = offpolicy.assemble(
    "residual_td3",
    "Residual TD3: the learner corrects the baseline controller, a = clip(pi_0(s) + a_res).",
    TD3Config,
    td3.LEARNER,
    RESIDUAL,
)
SAC = offpolicy.assemble(
    "residual_sac",
    "Residual SAC: the learner corrects the baseline controller, a = clip(pi_0(s) + a_res).",
    SACConfig,
    sac.LEARNER,
    RESIDUAL,
)
