"""Tests for the environments of Bolychev et al. (2026): underwater drone and treasure robot."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlx.envs as envs
from rlx.envs.treasure_robot import TreasureRobot
from rlx.envs.underwater_drone import UnderwaterDrone

from rlx.errors import RlxError

ENV_CLASSES = {"drone": UnderwaterDrone, "robot": TreasureRobot}
OBS_SIZES = {"drone": 7, "robot": 9}
ACTION_SIZES = {"drone": 2, "robot": 1}
NUM_EPISODES = 64


@functools.cache
def _env(name: str):
    """One shared instance per env (so jitted rollouts are cached across tests)."""
    return ENV_CLASSES[name]()


@functools.cache
def _rollout(name: str, policy: str, seed: int = 0, scale: float = 1.0):
    """Full-length rollouts of NUM_EPISODES vmapped episodes (lax.scan over steps).

    ``policy`` is ``"baseline"`` or ``"random"`` (uniform in ``[-scale, scale]``). Returns numpy
    arrays: the outcome metrics at each episode's last live step (masked after a termination),
    and per-step observations and rewards.
    """
    env = _env(name)
    keys_metrics = env.episode_metrics

    def one(key):
        k_reset, k_act = jax.random.split(key)
        state = env.reset(k_reset)
        outcome = {k: state.metrics[k] for k in keys_metrics}

        def body(carry, k):
            s, alive, out = carry
            if policy == "baseline":
                action = env.baseline_policy(s.obs)
            else:
                action = jax.random.uniform(k, (env.action_size,), jnp.float32, -scale, scale)
            s = env.step(s, action)
            out = {m: jnp.where(alive > 0, s.metrics[m], out[m]) for m in keys_metrics}
            alive = alive * (1.0 - s.done)
            return (s, alive, out), (s.obs, s.reward)

        init = (state, jnp.ones((), jnp.float32), outcome)
        (_, _, out), (obs, reward) = jax.lax.scan(
            body, init, jax.random.split(k_act, env.episode_length)
        )
        return out, obs, reward

    keys = jax.random.split(jax.random.PRNGKey(seed), NUM_EPISODES)
    out, obs, reward = jax.jit(jax.vmap(one))(keys)
    return (
        {k: np.asarray(v) for k, v in out.items()},
        np.asarray(obs),
        np.asarray(reward),
    )


@functools.cache
def _step_fn(name: str):
    """The env's jitted ``step`` (one compile per env)."""
    return jax.jit(_env(name).step)


# --------------------------------------------------------------------------------- both envs


@pytest.mark.parametrize("name", ["drone", "robot"])
def test_reset_and_step_shapes_and_dtypes(name):
    env = _env(name)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert env.backend == "jax"
    assert env.observation_size == OBS_SIZES[name]
    assert env.action_size == ACTION_SIZES[name]
    for s in (state, _step_fn(name)(state, jnp.zeros((env.action_size,), jnp.float32))):
        assert s.obs.shape == (OBS_SIZES[name],) and s.obs.dtype == jnp.float32
        assert s.reward.shape == () and s.reward.dtype == jnp.float32
        assert s.done.shape == () and s.done.dtype == jnp.float32
        for key in env.episode_metrics:
            assert s.metrics[key].shape == () and s.metrics[key].dtype == jnp.float32
        for leaf in jax.tree.leaves(s.pipeline_state):
            assert leaf.dtype in (jnp.float32, jnp.uint32)
    # The baseline works on batched observations.
    batch = jnp.stack([state.obs] * 3)[None]  # (1, 3, obs)
    act = env.baseline_policy(batch)
    assert act.shape == (1, 3, ACTION_SIZES[name]) and act.dtype == jnp.float32
    assert float(jnp.abs(act).max()) <= 1.0


@pytest.mark.parametrize("name", ["drone", "robot"])
def test_registry(name):
    reg = {"drone": "underwater_drone", "robot": "treasure_robot"}[name]
    env = envs.make(reg)
    assert isinstance(env, ENV_CLASSES[name])
    assert envs.episode_length(env) == ENV_CLASSES[name].episode_length
    assert reg in envs.names()
    envs.require_baseline(env, "agency_td3")  # the paper's algorithms accept it


@pytest.mark.parametrize("name", ["drone", "robot"])
@pytest.mark.slow
def test_random_rollout_finite(name):
    _, obs, reward = _rollout(name, "random")
    assert np.isfinite(obs).all() and np.isfinite(reward).all()


@pytest.mark.parametrize("name", ["drone", "robot"])
@pytest.mark.slow
def test_out_of_range_actions_are_clipped(name):
    env = _env(name)
    _, obs, reward = _rollout(name, "random", scale=50.0)
    assert np.isfinite(obs).all() and np.isfinite(reward).all()
    # One step with an out-of-range action equals one with the clipped action.
    state = env.reset(jax.random.PRNGKey(3))
    big = jnp.full((env.action_size,), 7.0, jnp.float32).at[0].set(-9.0)
    a = _step_fn(name)(state, big)
    b = _step_fn(name)(state, jnp.clip(big, -1.0, 1.0))
    np.testing.assert_array_equal(np.asarray(a.obs), np.asarray(b.obs))
    np.testing.assert_array_equal(np.asarray(a.reward), np.asarray(b.reward))


@pytest.mark.parametrize("name", ["drone", "robot"])
@pytest.mark.slow
def test_baseline_reaches_goal_random_does_not(name):
    base, _, _ = _rollout(name, "baseline")
    rand, _, _ = _rollout(name, "random")
    base_rate = base["goal_reached"].mean()
    rand_rate = rand["goal_reached"].mean()
    assert base_rate >= 0.9, base_rate
    # Measured (64 episodes, seed 0): drone 1.00 vs 0.00; robot 1.00 vs about 0.55 (a random
    # robot often slides along the left wall, where the goal disc sits).
    assert rand_rate <= 0.8 and base_rate - rand_rate >= 0.2, (base_rate, rand_rate)


@pytest.mark.parametrize("name", ["drone", "robot"])
def test_wrapped_for_training(name):
    env = _env(name)
    wrapped = envs.wrap_for_training(env, env.episode_length)
    state = jax.jit(wrapped.reset)(jax.random.split(jax.random.PRNGKey(0), 4))
    step = jax.jit(wrapped.step)
    for _ in range(3):
        state = step(state, jnp.zeros((4, env.action_size), jnp.float32))
    assert state.obs.shape == (4, OBS_SIZES[name])
    for key in env.episode_metrics:
        assert state.metrics[key].shape == (4,)


# --------------------------------------------------------------------------------- drone


def _drone_state(x, y, th=np.pi / 2, vx=0.0, vy=0.0, om=0.0, max_dist=0.0, init_dist=0.0):
    """A hand-built drone state (not frozen) wrapped in a State from a reset."""
    env = _env("drone")
    base = env.reset(jax.random.PRNGKey(0))
    q = jnp.array([x, y, th, vx, vy, om, 0.0, max_dist, init_dist], jnp.float32)
    return base.replace(pipeline_state=q, obs=env._obs(q))


def test_drone_goal_freezes():
    step = _step_fn("drone")
    # Just below the hole (|x| = 0.1 ≤ 0.4), rising at 1 m/s: y + v dt = 4.019 is clipped to
    # the official wall slack, 4.01, inside the hole (y ≥ 4): frozen.
    state = step(_drone_state(0.1, 3.999, vy=1.0), jnp.array([1.0, 0.0], jnp.float32))
    q = np.asarray(state.pipeline_state)
    assert q[1] == np.float32(4.01) and q[6] == 1.0
    np.testing.assert_array_equal(q[3:6], 0.0)
    assert float(state.metrics["goal_reached"]) == 1.0
    frozen = q.copy()
    for k in jax.random.split(jax.random.PRNGKey(1), 20):
        state = step(state, jax.random.uniform(k, (2,), jnp.float32, -1.0, 1.0))
        np.testing.assert_array_equal(np.asarray(state.pipeline_state), frozen)
        assert float(state.metrics["goal_reached"]) == 1.0
        # Reward on the frozen state: -0.25 (y - 4)² - 0.25 x² (v = ω = 0).
        expected = -0.25 * (frozen[1] - 4.0) ** 2 - 0.25 * frozen[0] ** 2
        np.testing.assert_allclose(float(state.reward), expected, rtol=1e-5)


def test_drone_top_wall_outside_hole():
    step = _step_fn("drone")
    # At x = 1 (outside the hole), rising into the top wall: held at 4.01 with the outward
    # velocity zeroed, not frozen.
    state = step(_drone_state(1.0, 3.999, vy=1.0), jnp.zeros((2,), jnp.float32))
    q = np.asarray(state.pipeline_state)
    assert q[1] == np.float32(4.01) and q[4] == 0.0 and q[6] == 0.0
    assert float(state.metrics["goal_reached"]) == 0.0
    # Beyond the wall, a velocity pointing back inside is kept (the zeroing is one-sided).
    # From y = 4.009 at vy = -0.2 the drone is still beyond the wall (y ≈ 4.005) after a step.
    state = step(_drone_state(1.0, 4.009, vy=-0.2), jnp.zeros((2,), jnp.float32))
    q = np.asarray(state.pipeline_state)
    assert q[1] > 4.0 and q[4] < -0.15


@pytest.mark.parametrize(("x", "vx", "wall"), [(2.499, 1.0, 2.51), (-2.499, -1.0, -2.51)])
def test_drone_side_walls(x, vx, wall):
    state = _step_fn("drone")(_drone_state(x, 2.0, th=0.0, vx=vx), jnp.zeros((2,), jnp.float32))
    q = np.asarray(state.pipeline_state)
    assert q[0] == np.float32(wall) and q[3] == 0.0


# (x, y, inside C?, distance to C's boundary x = 0.81 - 2.25 u², u = y' - 2), by hand: with
# u₀ = y - 2 the stationary points of D²(u) = (0.81 - 2.25 u² - x)² + (u - u₀)² solve
# 10.125 u³ + (1 - 4.5 (0.81 - x)) u - u₀ = 0; the distance is the smallest D among them.
REGION_POINTS = [
    # 0/0.81 + 0 ≤ 1; u = 0 gives 0.81, u² = 0.2612 gives D² = 0.2222² + 0.2612: 0.5573
    (0.0, 2.0, True, 0.5573),
    (1.0, 2.0, False, 0.0),  # 1/0.81 = 1.235 > 1
    (-2.0, 0.0, False, 0.0),  # -2/0.81 + 4/0.36 = -2.469 + 11.111 = 8.642 > 1
    # -2.469 + 0.694 ≤ 1; roots u = 1.0933 (D = 0.6054) and u = -1.0503 (D = 1.585)
    (-2.0, 2.5, True, 0.6054),
    (0.4, 2.5, False, 0.0),  # 0.494 + 0.694 = 1.188 > 1
    # 0.247 + 0.111 ≤ 1; roots u = -0.4636 (D = 0.2924) and u = 0.337 (D = 0.643)
    (0.2, 1.8, True, 0.2924),
    (-1.0, 1.0, False, 0.0),  # -1.235 + 1/0.36 = -1.235 + 2.778 = 1.543 > 1
    # 0.617 ≤ 1; u = 0 gives 0.31, u² = 0.0390 gives D² = 0.2222² + 0.0390: 0.2973
    (0.5, 2.0, True, 0.2973),
]


@pytest.mark.parametrize(("x", "y", "inside", "dist"), REGION_POINTS)
def test_drone_contaminated_region(x, y, inside, dist):
    env = _env("drone")
    assert float(env.in_contaminated(jnp.float32(x), jnp.float32(y))) == float(inside)
    measured = float(env.boundary_distance(jnp.float32(x), jnp.float32(y)))
    np.testing.assert_allclose(measured, dist, atol=2e-3)
    # Through `step` from rest (the drone sinks by g dt² = 2e-4, far from C's boundary here).
    # Starting distance 0 and no earlier penetration, so avoidance = distance after the step.
    state = _step_fn("drone")(_drone_state(x, y, th=0.0), jnp.zeros((2,), jnp.float32))
    assert float(state.metrics["in_contaminated"]) == float(inside)
    np.testing.assert_allclose(float(state.metrics["avoidance"]), dist, atol=2e-3)
    q = np.asarray(state.pipeline_state)
    expected = (
        -0.25 * (q[1] - 4.0) ** 2 - 0.25 * q[0] ** 2 - 0.05 * q[3] ** 2 - 0.05 * q[4] ** 2
    ) - 5.0 * inside
    np.testing.assert_allclose(float(state.reward), expected, rtol=1e-5)


def test_drone_avoidance_relative_to_start():
    step = _step_fn("drone")
    # Starting inside C 0.2973 from its boundary (x = 0.5, y = 2): staying adds nothing.
    d0 = 0.2973
    state = step(_drone_state(0.5, 2.0, th=0.0, max_dist=d0, init_dist=d0), jnp.zeros(2))
    assert float(state.metrics["avoidance"]) < 1e-3
    # From reset the avoidance is 0 and the running max never decreases.
    env = _env("drone")
    state = env.reset(jax.random.PRNGKey(5))
    assert float(state.metrics["avoidance"]) == 0.0


def test_drone_baseline_avoidance_reported():
    base, _, _ = _rollout("drone", "baseline")
    # The baseline ignores C and crosses it on its way up. Paper: 0.54 ± 0.18; a port of the
    # official env gave 0.51 ± 0.19; here 0.53 ± 0.18 (64 episodes, seed 0).
    assert 0.4 < base["avoidance"].mean() < 0.65, base["avoidance"].mean()


# --------------------------------------------------------------------------------- robot


def _robot_state(robot, treasure, key=0, **kwargs):
    """A hand-built robot state: robot [x, y, θ], treasure [x₁, y₁, vx₁, vy₁, collected]."""
    env = TreasureRobot(**kwargs)
    base = env.reset(jax.random.PRNGKey(key))
    ps = {
        "robot": jnp.asarray(robot, jnp.float32),
        "treasure": jnp.asarray(treasure, jnp.float32),
        "key": base.pipeline_state["key"],
    }
    return base.replace(pipeline_state=ps, obs=env._obs(ps))


def _capture_rollout(reward_kind):
    """40 zero-turn steps from a state that catches the treasure on the first step: robot at
    (0.5, 0.5) heading +x, treasure 0.05 ahead moving +x at 0.12 (after one step the robot is at
    0.5075 and the treasure near 0.556, 0.049 apart ≤ 0.08)."""
    env = TreasureRobot(reward=reward_kind)
    state = _robot_state([0.5, 0.5, 0.0], [0.55, 0.5, 0.12, 0.0, 0.0], reward=reward_kind)
    assert float(state.obs[8]) == pytest.approx(0.05)

    def body(s, _):
        s = env.step(s, jnp.zeros((1,), jnp.float32))
        return s, (s.reward, s.metrics["treasure_collected"], s.obs, s.done)

    _, out = jax.jit(lambda s: jax.lax.scan(body, s, None, 40))(state)
    return tuple(np.asarray(v) for v in out)


def test_robot_capture_rewarded_once():
    reward, collected, obs, done = _capture_rollout("official")
    # Capture step, against the treasure (official): 50 - ‖p - p₁‖ - 0.2 |bearing - θ| / π,
    # p the robot after the step (0.5075, 0.5), p₁ where the treasure was caught.
    delta = obs[0, 6:8] - np.array([0.5075, 0.5])
    cost = np.linalg.norm(delta) + 0.2 * abs(np.arctan2(delta[1], delta[0])) / np.pi
    assert 0.03 < np.linalg.norm(delta) < 0.08
    assert reward[0] == pytest.approx(50.0 - cost, abs=1e-4)
    # Once caught, the official reward is 0 on every step.
    assert (reward[1:] == 0.0).all()
    assert (collected == 1.0).all()
    assert (obs[:, 8] == 0.0).all()  # r₁ = 0 once collected
    assert (obs[:, 6:8] == obs[:1, 6:8]).all()  # the treasure stays put
    assert not np.asarray(done).any()


def test_robot_goal_after_catch_variant():
    reward, collected, _, _ = _capture_rollout("goal_after_catch")
    # First step: +50, minus the distance to the goal (0.5075) and 0.2 · |heading error|/π with
    # the goal straight behind (error π): 50 - 0.5075 - 0.2 = 49.2925; then the goal's costs.
    assert reward[0] == pytest.approx(50.0 - 0.5075 - 0.2, abs=1e-4)
    assert (reward[1:] < 0).all()
    assert (collected == 1.0).all()
    assert envs.make("treasure_robot_goal_reward").reward_kind == "goal_after_catch"
    with pytest.raises(RlxError, match="reward must be one of"):
        TreasureRobot(reward="dense")


def test_robot_no_capture_when_far():
    state = _robot_state([0.5, 0.5, 0.0], [0.9, 0.9, 0.12, 0.0, 0.0])
    state = _step_fn("robot")(state, jnp.zeros((1,), jnp.float32))
    assert float(state.metrics["treasure_collected"]) == 0.0
    assert float(state.reward) < 0.0
    assert float(state.obs[8]) == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("treasure", "flipped"),
    [
        ([0.949, 0.5, 0.12, 0.0, 0.0], (True, False)),  # x: 0.949 + 0.006 > 0.95 → clipped
        ([0.5, 0.051, 0.0, -0.12, 0.0], (False, True)),  # y: 0.051 - 0.006 < 0.05 → clipped
        ([0.051, 0.949, -0.085, 0.085, 0.0], (True, True)),  # corner: both clipped
    ],
)
def test_robot_treasure_bounces(treasure, flipped):
    state = _robot_state([0.2, 0.2, 0.0], treasure)
    new = np.asarray(
        _step_fn("robot")(state, jnp.zeros((1,), jnp.float32)).pipeline_state["treasure"]
    )
    for i, flip in enumerate(flipped):
        if flip:
            assert new[i] in (np.float32(0.05), np.float32(0.95))
            assert np.sign(new[2 + i]) == -np.sign(treasure[2 + i])
    assert np.linalg.norm(new[2:4]) <= 0.12 + 1e-6


def test_robot_treasure_speed_at_most_top_speed():
    # From rest the noise (σ = 0.03) sets the speed: well below the 0.12 cap, not raised to it.
    state = _robot_state([0.2, 0.2, 0.0], [0.5, 0.5, 0.0, 0.0, 0.0])
    new = np.asarray(
        _step_fn("robot")(state, jnp.zeros((1,), jnp.float32)).pipeline_state["treasure"]
    )
    assert 0.0 < np.linalg.norm(new[2:4]) < 0.1


def test_robot_treasure_spawn_region():
    env = _env("robot")
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(3), 4096))
    tr, robot = (
        np.asarray(states.pipeline_state["treasure"]),
        np.asarray(states.pipeline_state["robot"]),
    )
    assert tr[:, 0].min() >= 0.15 and tr[:, 0].max() <= 0.85
    assert tr[:, 1].min() >= 0.05 and tr[:, 1].max() <= 0.95
    assert tr[:, 0].min() < 0.16 and tr[:, 1].max() > 0.94  # the whole region is used
    assert (np.linalg.norm(tr[:, :2] - robot[:, :2], axis=1) >= 0.055).all()
    np.testing.assert_allclose(np.linalg.norm(tr[:, 2:4], axis=1), 0.12, rtol=1e-5)


def test_robot_treasure_stays_in_workspace():
    _, obs, _ = _rollout("robot", "random")
    assert (obs[..., 6:8] >= 0.05).all() and (obs[..., 6:8] <= 0.95).all()
    assert (obs[..., 0:2] >= 0.0).all() and (obs[..., 0:2] <= 1.0).all()


def test_robot_goal_terminates_and_combined_metric():
    env = _env("robot")
    # Heading straight at the goal from 0.055 away: one step of 0.0075 enters the 0.05 disc.
    state = _robot_state([0.055, 0.5, np.pi], [0.9, 0.9, 0.12, 0.0, 1.0])
    state = _step_fn("robot")(state, jnp.zeros((1,), jnp.float32))
    assert float(state.done) == 1.0
    assert float(state.metrics["goal_reached"]) == 1.0
    assert float(state.metrics["combined"]) == 1.0
    assert float(state.reward) == 0.0  # the treasure was caught earlier: 0 on the goal step
    assert set(env.episode_metrics) <= set(state.metrics)
    base, _, _ = _rollout("robot", "baseline")
    np.testing.assert_allclose(
        base["combined"], 0.5 * (base["goal_reached"] + base["treasure_collected"])
    )
