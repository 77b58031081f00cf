"""HABC's interventions calibrated against its own exploration: the scripted expert acting as
the policy, with HABC's noise (sigma 0.1), danger trigger and labels, is judged viable. Its
gate (the sigmoid of the viability head at the default threshold 0.8, over its own steps after
six updates of the heads) is at least 0.5 on every level of the pure-JAX task; with the earlier
danger margin (0.002, which fired on the noise) level 3's gate was 0.000."""

from __future__ import annotations

import jax
import pytest
from rlx.algos.finetune import habc
from rlx.envs.squeeze_lift import SqueezeLift

from rlx.learn import normalizer


def expert_as_policy(level: int, updates: int = 6, **env_kw) -> dict[str, float]:
    """The last update's HABC metrics with the env's expert acting as the policy (no cloning)."""
    env = SqueezeLift(level, **env_kw)
    config = habc.ALGORITHM.make_config(policy_steps=0, critic_hidden=(64, 64), num_envs=64,
                                        total_steps=64)  # fmt: skip
    expert = lambda params, constants, obs: env.baseline_policy(obs)  # noqa: E731
    state = habc.init_from(jax.random.PRNGKey(0), config, {}, None, normalizer.init(9), 9)
    first = habc.collect(env, state, jax.random.PRNGKey(1), expert)
    state = state.replace(obs_stats=normalizer.update(normalizer.init(9), first.obs[first.valid]))

    @jax.jit
    def one(state):
        key, k_collect = jax.random.split(state.key)
        state = state.replace(key=key)
        return habc.learn(state, habc.collect(env, state, k_collect, expert), expert)

    for _ in range(updates):
        state, metrics = one(state)
    return {name: float(value) for name, value in metrics.items()}


@pytest.mark.slow
@pytest.mark.parametrize("level", [1, 2, 3])
def test_the_noisy_expert_is_judged_viable_on_every_level(level):
    metrics = expert_as_policy(level)
    assert metrics["habc/gate"] >= 0.5, metrics
    assert metrics["train/episode_goal_reached"] >= 0.85, metrics
