"""Tests for the factorized-baseline test beds: target matching and point agents."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.base import State
from rlx.envs.point_agents import PointAgents
from rlx.envs.target_matching import TargetMatching

from rlx import envs
from rlx.errors import RlxError

METRICS = {
    "target_matching": ("goal_reached", "distance"),
    "point_agents": ("goal_reached", "distance", "collisions"),
}


@functools.cache
def _env(kind: str, size: int):
    """One shared instance per (kind, size), so jitted rollouts are cached across tests."""
    return TargetMatching(action_dim=size) if kind == "target_matching" else PointAgents(size)


@functools.cache
def _rollout(kind: str, size: int, policy: str, n: int, seed: int = 0):
    """n vmapped episodes of episode_length steps (jit + lax.scan); numpy per-step outputs."""
    env = _env(kind, size)

    def one(key):
        k_reset, k_act = jax.random.split(key)
        state = env.reset(k_reset)

        def body(s, k):
            if policy == "baseline":
                action = env.baseline_policy(s.obs)
            else:
                action = jax.random.uniform(k, (env.action_size,), jnp.float32, -1.0, 1.0)
            s = env.step(s, action)
            return s, (s.obs, s.reward, s.done, s.metrics)

        keys = jax.random.split(k_act, env.episode_length)
        return jax.lax.scan(body, state, keys)[1]

    out = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(seed), n))
    return jax.tree.map(np.asarray, out)


CASES = [
    ("target_matching", 6),
    ("target_matching", 2000),
    ("point_agents", 3),
    ("point_agents", 20),
]


@pytest.mark.parametrize(("kind", "size"), CASES)
def test_reset_and_step_shapes_and_dtypes(kind, size):
    env = _env(kind, size)
    act_size = size if kind == "target_matching" else 2 * size
    obs_size = 2 * size if kind == "target_matching" else 6 * size
    assert env.action_size == act_size and env.observation_size == obs_size
    assert env.backend == "jax" and env.episode_length == 50
    assert env.episode_metrics == ("goal_reached", "distance")
    state = jax.jit(env.reset)(jax.random.PRNGKey(1))
    assert isinstance(state, State)
    for s in (state, jax.jit(env.step)(state, jnp.zeros(act_size, jnp.float32))):
        assert s.obs.shape == (obs_size,) and s.obs.dtype == jnp.float32
        assert s.reward.shape == s.done.shape == ()
        assert s.reward.dtype == s.done.dtype == jnp.float32
        assert set(s.metrics) == set(METRICS[kind])
        for value in s.metrics.values():
            assert value.shape == () and value.dtype == jnp.float32
        for leaf in jax.tree.leaves(s.pipeline_state):
            assert leaf.dtype == jnp.float32
    # The size-dependent observation width agrees with the registry's abstract evaluation.
    assert envs.observation_size(env) == obs_size


@pytest.mark.parametrize(("kind", "size"), CASES)
@pytest.mark.slow
def test_random_episode_is_finite_and_in_bounds(kind, size):
    obs, reward, done, metrics = _rollout(kind, size, "random", n=4)
    assert obs.shape == (4, 50, _env(kind, size).observation_size)
    assert np.isfinite(obs).all() and np.isfinite(reward).all()
    assert (done == 0).all()  # no termination
    n_pos = size if kind == "target_matching" else 2 * size
    assert (np.abs(obs[..., :n_pos]) <= 1.0).all()  # positions stay in the box
    assert (reward <= 0).all()
    for name in METRICS[kind]:
        assert np.isfinite(metrics[name]).all()


def test_target_matching_reward_is_exactly_separable():
    env = TargetMatching(action_dim=4)
    pos = np.array([0.5, -0.95, 0.0, 0.3], np.float32)
    target = np.array([0.6, -1.0, 0.8, -0.7], np.float32)
    action = np.array([1.0, -3.0, 0.25, -0.5], np.float32)  # -3 is clipped to -1
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    ps = {"pos": jnp.asarray(pos), "target": jnp.asarray(target)}
    state = state.replace(pipeline_state=ps, obs=jnp.concatenate([ps["pos"], ps["target"]]))
    step = jax.jit(env.step)
    new = step(state, jnp.asarray(action))
    # By hand: p' = clip(p + 0.1 clip(a)), second coordinate hits the wall at -1.
    new_pos = np.array([0.6, -1.0, 0.025, 0.25], np.float32)
    np.testing.assert_allclose(np.asarray(new.pipeline_state["pos"]), new_pos, atol=1e-7)
    terms = -((new_pos.astype(np.float64) - target) ** 2)  # [0, 0, -0.600625, -0.9025]
    np.testing.assert_allclose(float(new.reward), terms.mean(), rtol=1e-6)
    np.testing.assert_allclose(float(new.reward), -(0.600625 + 0.9025) / 4, rtol=1e-6)
    # Each dimension's term depends only on its own action: changing a_3 changes r by Δr_3 / m.
    action2 = action.copy()
    action2[2] = -1.0
    new2 = step(state, jnp.asarray(action2))
    delta = (-((np.float64(-0.1) - 0.8) ** 2) - terms[2]) / 4
    np.testing.assert_allclose(float(new2.reward) - float(new.reward), delta, rtol=1e-5)
    np.testing.assert_allclose(float(new.metrics["distance"]), np.abs(new_pos - target).mean())


def test_point_agents_reward_by_hand():
    env = PointAgents(num_agents=3)
    ps = {
        "pos": jnp.array([[0.0, 0.0], [0.05, 0.0], [0.5, 0.5]], jnp.float32),
        "vel": jnp.zeros((3, 2), jnp.float32),
        "landmark": jnp.array([[0.0, 0.0], [0.05, 0.0], [0.5, 0.8]], jnp.float32),
    }
    step = jax.jit(env.step)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0)).replace(pipeline_state=ps)
    new = step(state, jnp.zeros(6, jnp.float32))
    # Agents 0 and 1 are 0.05 apart (one collision); distances 0, 0, 0.3.
    assert float(new.metrics["collisions"]) == 1.0
    np.testing.assert_allclose(float(new.metrics["distance"]), 0.1, rtol=1e-6)
    np.testing.assert_allclose(float(new.reward), -0.3 / 3 - 0.1 / 3, rtol=1e-6)
    assert float(new.metrics["goal_reached"]) == 0.0
    # A velocity pushing through the wall is zeroed in that coordinate only.
    ps_wall = {**ps, "pos": ps["pos"].at[2].set(jnp.array([0.999, 0.5]))}
    ps_wall["vel"] = ps["vel"].at[2].set(jnp.array([0.5, 0.5]))
    wall = step(state.replace(pipeline_state=ps_wall), jnp.zeros(6, jnp.float32))
    np.testing.assert_allclose(np.asarray(wall.pipeline_state["pos"][2]), [1.0, 0.54], atol=1e-6)
    np.testing.assert_allclose(np.asarray(wall.pipeline_state["vel"][2]), [0.0, 0.4], atol=1e-6)


@pytest.mark.parametrize(
    ("kind", "size", "threshold"), [("target_matching", 60, 0.9), ("point_agents", 3, 0.8)]
)
@pytest.mark.slow
def test_baseline_reaches_goal_and_random_does_not(kind, size, threshold):
    n = 64
    base = _rollout(kind, size, "baseline", n=n)[3]["goal_reached"][:, -1].mean()
    rand = _rollout(kind, size, "random", n=n)[3]["goal_reached"][:, -1].mean()
    assert base >= threshold, base
    assert rand < 0.1, rand


def test_baseline_policy_is_batched():
    for env in (_env("target_matching", 6), _env("point_agents", 3)):
        obs = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(2), 5)).obs
        policy = jax.jit(env.baseline_policy)
        batched = policy(obs.reshape(5, 1, -1))
        single = jnp.stack([policy(o) for o in obs])
        assert batched.shape == (5, 1, env.action_size)
        np.testing.assert_allclose(np.asarray(batched[:, 0]), np.asarray(single))
        assert (jnp.abs(batched) <= 1.0).all()


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_sizes_raise(bad):
    with pytest.raises(RlxError, match=rf"action_dim must be an integer >= 1, got {bad}"):
        TargetMatching(action_dim=bad)
    with pytest.raises(RlxError, match=rf"num_agents must be an integer >= 1, got {bad}"):
        PointAgents(num_agents=bad)
    with pytest.raises(RlxError, match="action_dim"):
        envs.make("target_matching", action_dim=bad)
    with pytest.raises(RlxError, match="num_agents"):
        envs.make("point_agents_k6", num_agents=bad)


def test_registry_sizes():
    for m in (6, 60, 600, 2000):
        assert envs.make(f"target_matching_m{m}").action_size == m
    for k in (6, 20):
        assert envs.make(f"point_agents_k{k}").action_size == 2 * k
    assert envs.make("target_matching").action_size == 6
    assert envs.make("point_agents").action_size == 6
    assert envs.make("target_matching_m60", goal_tolerance=0.1).goal_tolerance == 0.1


def test_one_step_target_matching_and_its_exact_marginal():
    env = envs.make("target_matching_bandit_m6")
    assert env.exact_marginal_q and not envs.make("target_matching_m6").exact_marginal_q
    key = jax.random.PRNGKey(0)
    state = env.reset(key)
    pos = jnp.array([-0.97, 0.99, 0.0, 0.5, -0.5, 0.2])  # near both walls: both clips bind
    obs = jnp.concatenate([pos, state.obs[6:]])
    state = state.replace(obs=obs, pipeline_state={**state.pipeline_state, "pos": pos})
    mean, std = jnp.array([-1.5, 1.2, 0.0, 0.3, -0.8, 2.0]), jnp.linspace(0.2, 1.0, 6)
    action = mean + std * jax.random.normal(key, (400_000, 6))
    nxt = env.step(state, action[0])
    assert float(nxt.done) == 1.0
    terms = env.action_reward_terms(obs, action)
    assert float(nxt.reward) == pytest.approx(float(terms[0].sum()), abs=1e-6)
    np.testing.assert_allclose(
        env.expected_action_reward_terms(obs, mean, std), terms.mean(0), rtol=5e-3, atol=2e-5
    )
    # E_{a_i}[Q] by Monte Carlo through env.step alone: keep a_-i = action[0], redraw a_i from
    # N(mean_i, std_i^2) n times, average the one-step rewards (= Q). The tolerance is 5
    # standard errors of each dimension's sample mean (std of the rewards / sqrt(n)), plus
    # float32 rounding (dimension 0's clip always binds: its rewards are one value).
    n = 400_000
    draws = mean + std * jax.random.normal(jax.random.PRNGKey(1), (n, 6))
    eye = jnp.eye(6, dtype=bool)
    swapped = jnp.where(eye[:, None, :], draws[None], action[0][None, None])  # [i, n, 6]
    rewards = np.asarray(jax.jit(jax.vmap(jax.vmap(lambda a: env.step(state, a).reward)))(swapped))
    tolerance = 5.0 * rewards.std(1) / np.sqrt(n) + 1e-6
    marginal = np.asarray(env.marginal_q(obs, action[0], mean, std))
    assert (np.abs(marginal - rewards.mean(1)) <= tolerance).all(), (marginal, rewards.mean(1))
    assert tolerance.max() < 2e-4, tolerance
    with pytest.raises(RlxError, match="one_step must be true or false, got 1"):
        TargetMatching(one_step=1)
