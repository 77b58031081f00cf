"""Tests for the pure-JAX classic swing-up environments (pendulum and cart-pole)."""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.wrappers import training as brax_training

_ENVS_DIR = Path(__file__).resolve().parents[1] / "envs"


def _load(module: str, cls: str):
    """Import ``rlx.envs.<module>.<cls>``, falling back to loading the file by path."""
    try:
        mod = importlib.import_module(f"rlx.envs.{module}")
    except ImportError:
        spec = importlib.util.spec_from_file_location(
            f"_rlx_test_{module}", _ENVS_DIR / f"{module}.py"
        )
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return getattr(mod, cls)


PendulumSwingup = _load("pendulum", "PendulumSwingup")
CartpoleSwingup = _load("cartpole", "CartpoleSwingup")

ENV_CLASSES = {"pendulum": PendulumSwingup, "cartpole": CartpoleSwingup}
OBS_SIZES = {"pendulum": 3, "cartpole": 5}


@functools.cache
def _env(name: str):
    """One shared instance per env (so jitted rollouts are cached across tests)."""
    return ENV_CLASSES[name]()


@functools.cache
def _rollout(name: str, policy: str, n: int, seed: int):
    """Roll out n vmapped envs for episode_length steps with lax.scan; returns numpy arrays."""
    env = _env(name)
    length = env.episode_length

    def one(key):
        k_reset, k_act = jax.random.split(key)
        state = env.reset(k_reset)

        def body(s, k):
            if policy == "baseline":
                action = env.baseline_policy(s.obs)
            else:
                action = jax.random.uniform(k, (env.action_size,), jnp.float32, -1.0, 1.0)
            s = env.step(s, action)
            out = (s.reward, s.done, s.metrics["goal_reached"], s.obs, action)
            return s, out

        _, outs = jax.lax.scan(body, state, jax.random.split(k_act, length))
        return outs

    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    reward, done, goal, obs, action = jax.jit(jax.vmap(one))(keys)
    # Undiscounted return up to (and including) the first terminating step.
    alive = np.cumprod(np.concatenate([np.ones((n, 1)), 1.0 - np.asarray(done)[:, :-1]], 1), 1)
    ret = (np.asarray(reward) * alive).sum(1)
    tail = max(1, length // 10)
    success = np.asarray(goal)[:, -tail:].min(1) == 1.0
    return {
        "reward": np.asarray(reward),
        "done": np.asarray(done),
        "goal": np.asarray(goal),
        "obs": np.asarray(obs),
        "action": np.asarray(action),
        "return": ret,
        "success": success,
    }


def _spec(tree):
    """(shape, dtype, weak_type) of every leaf, plus the tree structure."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, [(x.shape, x.dtype, getattr(x, "weak_type", False)) for x in leaves]


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_shapes_dtypes_and_api(name):
    env = _env(name)
    assert env.backend == "jax"
    assert env.observation_size == OBS_SIZES[name]
    assert env.action_size == 1
    assert isinstance(type(env).episode_length, int)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    nxt = jax.jit(env.step)(state, jnp.zeros((env.action_size,), jnp.float32))
    for s in (state, nxt):
        assert s.obs.shape == (env.observation_size,)
        assert s.obs.dtype == jnp.float32
        assert s.reward.shape == () and s.reward.dtype == jnp.float32
        assert s.done.shape == () and s.done.dtype == jnp.float32
        assert s.pipeline_state.dtype == jnp.float32
        assert set(s.metrics) == {"goal_reached"}
        assert s.metrics["goal_reached"].shape == ()
        assert s.metrics["goal_reached"].dtype == jnp.float32
    assert float(state.done) == 0.0


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_reset_and_step_have_identical_structure(name):
    env = _env(name)
    reset_shape = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    step_shape = jax.eval_shape(env.step, reset_shape, jnp.zeros((1,), jnp.float32))
    assert _spec(reset_shape) == _spec(step_shape)
    assert not any(w for _, _, w in _spec(step_shape)[1]), "weak types leak into the state"


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_random_rollout_is_finite(name):
    env = _env(name)

    def one(key):
        state = env.reset(key)

        def body(s, k):
            a = jax.random.uniform(k, (1,), jnp.float32, -1.0, 1.0)
            s = env.step(s, a)
            return s, (s.obs, s.reward, s.done, s.pipeline_state)

        return jax.lax.scan(body, state, jax.random.split(key, 200))[1]

    obs, reward, done, q = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(1), 16))
    assert obs.shape == (16, 200, env.observation_size)
    for x in (obs, reward, done, q):
        assert bool(jnp.all(jnp.isfinite(x)))
    assert bool(jnp.all((done == 0.0) | (done == 1.0)))
    if name == "pendulum":
        assert bool(jnp.all(reward <= 0.0)) and bool(jnp.all(done == 0.0))
    else:
        assert bool(jnp.all((reward >= 0.0) & (reward <= 1.0)))


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_actions_are_clipped(name):
    env = _env(name)
    state = env.reset(jax.random.PRNGKey(3))
    step = jax.jit(env.step)
    for big, edge in ((5.0, 1.0), (-7.5, -1.0)):
        a = step(state, jnp.array([big], jnp.float32))
        b = step(state, jnp.array([edge], jnp.float32))
        np.testing.assert_array_equal(a.pipeline_state, b.pipeline_state)
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.reward, b.reward)
    # ... while actions inside the range do matter.
    c = step(state, jnp.array([0.5], jnp.float32))
    assert not np.array_equal(c.pipeline_state, step(state, jnp.ones((1,))).pipeline_state)


def test_pendulum_step_by_hand():
    env = _env("pendulum")
    state = env.reset(jax.random.PRNGKey(0))
    state = state.replace(pipeline_state=jnp.array([0.3, -1.0], jnp.float32))
    # u = 2 * 0.5 = 1.0; θdot' = -1 + (15 sin 0.3 + 3 * 1.0) * 0.05; θ' = 0.3 + θdot' * 0.05
    out = env.step(state, jnp.array([0.5], jnp.float32))
    np.testing.assert_allclose(out.pipeline_state, [0.268582008, -0.628359845], rtol=1e-5)
    np.testing.assert_allclose(out.obs, [0.964148150, 0.265364549, -0.628359845], rtol=1e-5)
    # reward = -(0.3² + 0.1 * 1² + 0.001 * 1²) on the pre-step state.
    np.testing.assert_allclose(out.reward, -0.191, rtol=1e-5)
    assert float(out.done) == 0.0 and float(out.metrics["goal_reached"]) == 0.0
    # Speed clip: θ = 1, θdot = 7.9, u = 2 -> θdot' = min(8.8311, 8) = 8, θ' = 1 + 8 * 0.05.
    state = state.replace(pipeline_state=jnp.array([1.0, 7.9], jnp.float32))
    out = env.step(state, jnp.array([1.0], jnp.float32))
    np.testing.assert_allclose(out.pipeline_state, [1.4, 8.0], rtol=1e-6)
    # Wrapping: θ = 3.1, θdot = 2, u = 0 -> θdot' = 2 + 15 sin(3.1) * 0.05 = 2.0311855,
    # θ' = 3.1 + 0.10155928 - 2π = -3.0816260.
    state = state.replace(pipeline_state=jnp.array([3.1, 2.0], jnp.float32))
    out = env.step(state, jnp.array([0.0], jnp.float32))
    np.testing.assert_allclose(out.pipeline_state, [-3.0816260, 2.0311855], rtol=1e-5)
    # Goal set: upright and still.
    state = state.replace(pipeline_state=jnp.array([0.0, 0.0], jnp.float32))
    assert float(env.step(state, jnp.zeros((1,))).metrics["goal_reached"]) == 1.0
    assert math.isclose(float(env.step(state, jnp.zeros((1,))).reward), 0.0, abs_tol=1e-7)


def test_cartpole_terminates_off_track():
    env = _env("cartpole")
    state = env.reset(jax.random.PRNGKey(0))
    state = state.replace(pipeline_state=jnp.array([2.39, 1.0, 0.0, 0.0], jnp.float32))
    out = jax.jit(env.step)(state, jnp.array([1.0], jnp.float32))
    assert float(out.done) == 1.0
    assert float(out.reward) == 0.0
    inside = state.replace(pipeline_state=jnp.array([-2.0, 0.0, 0.0, 0.0], jnp.float32))
    out = jax.jit(env.step)(inside, jnp.array([0.0], jnp.float32))
    assert float(out.done) == 0.0
    assert 0.0 < float(out.reward) <= 1.0


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
@pytest.mark.slow
def test_baseline_policy_output(name):
    env = _env(name)
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(5), 8)).obs
    single = env.baseline_policy(obs[0])
    assert single.shape == (env.action_size,) and single.dtype == jnp.float32
    batched = jax.jit(jax.vmap(env.baseline_policy))(obs)
    assert batched.shape == (8, env.action_size)
    np.testing.assert_allclose(batched[0], single, rtol=1e-6, atol=1e-6)
    res = _rollout(name, "baseline", 64, 0)
    assert np.all(np.abs(res["action"]) <= 1.0)


def test_pendulum_baseline_bias_offsets_the_controller_and_is_checked():
    plain, biased = PendulumSwingup(), PendulumSwingup(baseline_bias=-0.5)
    obs = jax.vmap(plain.reset)(jax.random.split(jax.random.PRNGKey(3), 64)).obs
    want = np.clip(np.asarray(plain.baseline_policy(obs)) - 0.5, -1.0, 1.0)
    np.testing.assert_allclose(biased.baseline_policy(obs), want, atol=1e-6)
    assert not np.allclose(want, plain.baseline_policy(obs))
    for bad in (2.5, "0.1", True):
        with pytest.raises(Exception, match="baseline_bias must be"):
            PendulumSwingup(baseline_bias=bad)


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_baseline_reaches_goal(name):
    res = _rollout(name, "baseline", 64, 0)
    assert res["success"].mean() >= 0.8, res["success"].mean()
    if name == "cartpole":
        assert res["done"].max() == 0.0, "baseline left the track"


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
@pytest.mark.slow
def test_random_policy_rarely_reaches_goal(name):
    res = _rollout(name, "random", 64, 0)
    assert res["success"].mean() < 0.1, res["success"].mean()


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_baseline_return_beats_random(name):
    base = _rollout(name, "baseline", 64, 0)["return"].mean()
    rand = _rollout(name, "random", 64, 0)["return"].mean()
    # Much better: the gap is at least half of the random policy's |return| and of a
    # fixed per-env margin (pendulum returns are negative costs, cart-pole's are in [0, 500]).
    margin = {"pendulum": 500.0, "cartpole": 200.0}[name]
    assert base - rand > max(margin, 0.5 * abs(rand)), (base, rand)


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_brax_training_wrappers(name):
    """Episode/auto-reset wrappers: time-out sets truncation, leaving the track does not."""
    env = _env(name)
    length = env.episode_length
    wrapped = brax_training.wrap(env, episode_length=length)
    state = wrapped.reset(jax.random.split(jax.random.PRNGKey(0), 2))
    action = jnp.ones((2, 1), jnp.float32)  # pushes the cart off the track

    def body(s, _):
        s = wrapped.step(s, action)
        return s, (s.done, s.info["truncation"])

    _, (done, trunc) = jax.jit(lambda s: jax.lax.scan(body, s, None, length))(state)
    if name == "pendulum":
        assert np.all(np.asarray(done)[:-1] == 0.0) and np.all(np.asarray(done)[-1] == 1.0)
        assert np.all(np.asarray(trunc)[-1] == 1.0)
    else:
        done, trunc = np.asarray(done)[:-1], np.asarray(trunc)[:-1]
        assert done.sum() >= 2  # terminated (and auto-reset) well before the time-out
        assert np.all(trunc[done == 1.0] == 0.0)  # a termination is not a truncation
