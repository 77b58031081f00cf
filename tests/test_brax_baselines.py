"""Brax tasks with a hand-made baseline (``brax:reacher``, ``brax:inverted_pendulum``): the registry
wraps them, the baselines reach the goal set far more often than a zero/random policy, and the
wrapper leaves Brax's observations and rewards untouched.

Each rollout is one jitted ``lax.scan`` over a vmapped batch on the default MJX backend (MJX
compiles in ~10-30 s on a CPU); baseline and comparison policy share one compiled program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.envs.brax_tasks import InvertedPendulumBaseline, ReacherBaseline
from smoke import smoke_jit

from rlx import envs
from rlx.errors import RlxError

NUM_EPISODES = 32


def _rollout(env, steps: int, key: jax.Array):
    """A compiled rollout of `NUM_EPISODES` episodes, as a function of two policy weights.

    ``run(w_base, w_noise)`` plays ``a = w_base * baseline(obs) + w_noise * U(-1, 1)`` (so
    ``(1, 0)`` is the baseline, ``(0, 0)`` the zero policy, ``(0, 1)`` uniform noise) from the same
    initial states, and returns per-step ``(done, goal_reached)``, each ``(steps, NUM_EPISODES)``.
    """

    def roll(w_base, w_noise):
        k_reset, k_act = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(k_reset, NUM_EPISODES))

        def body(s, k):
            noise = jax.random.uniform(k, (NUM_EPISODES, env.action_size), minval=-1.0, maxval=1.0)
            action = w_base * env.baseline_policy(s.obs) + w_noise * noise
            s = jax.vmap(env.step)(s, action)
            return s, (s.done, s.metrics["goal_reached"])

        return jax.lax.scan(body, state, jax.random.split(k_act, steps))[1]

    fn = jax.jit(roll)

    def run(w_base: float, w_noise: float) -> tuple[np.ndarray, np.ndarray]:
        done, goal = fn(jnp.float32(w_base), jnp.float32(w_noise))
        return np.asarray(done), np.asarray(goal)

    return run


@pytest.mark.parametrize(
    ("name", "cls", "obs_size", "action_size"),
    [
        ("brax:reacher", ReacherBaseline, 11, 2),
        ("brax:inverted_pendulum", InvertedPendulumBaseline, 4, 1),
    ],
)
@pytest.mark.slow
def test_registry_wraps_with_baseline(name, cls, obs_size, action_size):
    env = envs.make(name)
    assert isinstance(env, cls)
    assert envs.has_baseline(env)
    assert envs.outcome_metrics(env) == ("goal_reached",)
    assert "baseline controller" in envs.names()[name]
    assert env.action_size == action_size
    assert envs.observation_size(env) == obs_size  # (Brax's observation_size property is slow)
    # The baseline works on any batch shape and stays in [-1, 1].
    obs = 10.0 * jax.random.normal(jax.random.PRNGKey(0), (3, 5, obs_size))
    act = np.asarray(env.baseline_policy(obs))
    assert act.shape == (3, 5, env.action_size) and act.dtype == np.float32
    assert np.all(np.abs(act) <= 1.0)
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    assert state.metrics["goal_reached"].shape == () and state.metrics["goal_reached"].dtype == (
        jnp.float32
    )
    envs.require_baseline(env, "agency_td3")  # accepted: the wrapper ships a controller
    assert not envs.has_baseline(envs.make("brax:hopper"))
    with pytest.raises(
        RlxError, match=r"agency_td3 needs an environment with a baseline.*pendulum"
    ):
        envs.require_baseline(envs.make("brax:hopper"), "agency_td3")


@pytest.mark.slow
def test_reacher_baseline_reaches_target():
    run = _rollout(envs.make("brax:reacher"), steps=100, key=jax.random.PRNGKey(0))
    _, goal = run(1.0, 0.0)
    _, goal_zero = run(0.0, 0.0)
    _, goal_noise = run(0.0, 1.0)
    assert goal[-1].mean() >= 0.8, goal[-1].mean()
    # Zero action leaves the arm (nearly straight) where it started: rarely on the target.
    assert goal_zero[-1].mean() <= 0.2, goal_zero[-1].mean()
    assert goal_noise[-1].mean() <= 0.2, goal_noise[-1].mean()


@pytest.mark.slow
def test_inverted_pendulum_baseline_balances():
    run = _rollout(envs.make("brax:inverted_pendulum"), steps=300, key=jax.random.PRNGKey(1))
    done, goal = run(1.0, 0.0)
    done_noise, goal_noise = run(0.0, 1.0)
    assert done.max() == 0.0  # the pole never falls
    assert goal[-1].mean() >= 0.8, goal[-1].mean()
    # Uniformly random forces topple the pole in (nearly) every episode.
    assert (done_noise.max(axis=0) > 0).mean() >= 0.8
    assert goal_noise[-1].mean() <= 0.2


@pytest.mark.parametrize("name", ["brax:reacher", "brax:inverted_pendulum"])
@pytest.mark.slow
def test_wrapper_keeps_obs_and_reward(name):
    env = envs.make(name)
    raw = env.unwrapped
    steps = 4

    def roll(key):
        k_reset, k_act = jax.random.split(key)
        actions = jax.random.uniform(k_act, (steps, env.action_size), minval=-1.0, maxval=1.0)

        def run(e):
            def body(s, a):
                s = e.step(s, a)
                return s, (s.obs, s.reward, s.done)

            s0 = e.reset(k_reset)
            return s0.obs, jax.lax.scan(body, s0, actions)[1]

        return run(env), run(raw)

    (obs0_w, (obs_w, rew_w, done_w)), (obs0_r, (obs_r, rew_r, done_r)) = smoke_jit(roll)(
        jax.random.PRNGKey(2)
    )
    np.testing.assert_array_equal(obs0_w, obs0_r)
    np.testing.assert_array_equal(obs_w, obs_r)
    np.testing.assert_array_equal(rew_w, rew_r)
    np.testing.assert_array_equal(done_w, done_r)
