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


def _letting_go(env: SqueezeLift):
    """A policy that carries like the expert but opens both hands once the box is above 0.2."""

    def act(params, constants, obs):
        high = (obs[..., 5] > 0.2)[..., None]
        open_up = jax.numpy.broadcast_to(
            jax.numpy.array([-1.0, 0.0, 1.0, 0.0]), (*obs.shape[:-1], 4)
        )
        return jax.numpy.where(high, open_up, env.baseline_policy(obs))

    return act


@pytest.mark.slow
def test_the_expert_holds_until_the_box_is_held_again_or_resting():
    env = SqueezeLift(1)
    config = habc.ALGORITHM.make_config(policy_steps=0, critic_hidden=(16,), num_envs=16,
                                        total_steps=16, explore_std=0.0)  # fmt: skip
    state = habc.init_from(jax.random.PRNGKey(0), config, {}, None, normalizer.init(9), 9)
    ep = jax.jit(lambda s: habc.collect(env, s, jax.random.PRNGKey(3), _letting_go(env)))(state)
    intervened, valid, obs = (jax.device_get(x) for x in (ep.intervened, ep.valid, ep.obs))
    handed_back = valid[:, 1:] & intervened[:, :-1] & ~intervened[:, 1:]
    e, t = handed_back.nonzero()
    assert len(e) >= 8, "the letting-go policy should be rescued and handed back in most episodes"
    after = obs[e, t + 1]
    held, resting = after[:, 7] > 0, after[:, 5] <= env.w + 1e-4
    assert (held | resting).all(), after
    # Every take-over was for danger and lasted at least hold_steps (10).
    assert set(jax.device_get(ep.reason)[intervened].tolist()) == {habc.REASONS.index("danger")}
    # Each hand-back comes after at least hold_steps (10) steps of the expert.
    for i, j in zip(e, t, strict=True):
        assert intervened[i, j - 9 : j + 1].all(), (i, j)
