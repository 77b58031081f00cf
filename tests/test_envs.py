"""Every registered environment resets and steps under jit with the right shapes and no NaNs;
Brax environments on every physics backend; the training wrappers keep time-outs apart from
terminations and keep the final observation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from smoke import smoke_jit

from rlx import envs
from rlx.errors import RlxError

# Playground's contact-rich DM Control ports take a minute each to compile on a CPU; the cheap
# ones (no contacts) stand for them here, and tests/test_playground.py checks the registry.
PLAYGROUND_CHEAP = ("CartpoleSwingup", "PendulumSwingup", "PointMass")
PLAYGROUND_UNTESTED = {
    n for n in envs.names() if n.startswith("playground:") and n[11:] not in PLAYGROUND_CHEAP
}


def _rollout(env, steps: int = 3, trace_only: bool = False):
    """Reset one env and take `steps` random actions, all inside one jit (one env, no vmap: the
    cheapest program to compile for the physics envs); with `trace_only`, the outputs' shapes
    and dtypes from tracing alone (`jax.eval_shape`), without compiling."""

    def roll(key):
        k_reset, k_act = jax.random.split(key)
        state = env.reset(k_reset)

        def body(s, k):
            a = jax.random.uniform(k, (env.action_size,), minval=-1.0, maxval=1.0)
            s = env.step(s, a)
            return s, (s.obs, s.reward, s.done)

        return jax.lax.scan(body, state, jax.random.split(k_act, steps))

    if trace_only:
        return jax.eval_shape(roll, jax.random.PRNGKey(0))
    return smoke_jit(roll)(jax.random.PRNGKey(0))


# Compiling MJX physics costs 15-30 s an env on 2 cores. These are traced only (shapes and
# dtypes, no XLA): Brax's own tasks that rlx does not step elsewhere in the tests, and the
# bimanual MJX task's three levels (`envs.make` returns the env class itself, which
# tests/test_bimanual_mjx.py steps for real on levels 1 and 3, for 120-300 steps). brax:ant,
# inverted_pendulum and reacher, and every other rlx env, run for real.
TRACE_ONLY = {
    "brax:halfcheetah", "brax:hopper", "brax:humanoid", "brax:humanoidstandup",
    "brax:inverted_double_pendulum", "brax:pusher", "brax:walker2d",
    "squeeze_lift_mjx_l1", "squeeze_lift_mjx_l2", "squeeze_lift_mjx_l3",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(n for n in envs.names() if n not in PLAYGROUND_UNTESTED))
@pytest.mark.slow
def test_every_env_resets_and_steps(name):
    env, trace_only = envs.make(name), name in TRACE_ONLY
    _, (obs, reward, done) = _rollout(env, trace_only=trace_only)
    assert obs.shape == (3, envs.observation_size(env))
    assert reward.shape == done.shape == (3,)
    assert obs.dtype == reward.dtype == jnp.float32
    if not trace_only:
        assert np.isfinite(np.asarray(obs)).all() and np.isfinite(np.asarray(reward)).all()


@pytest.mark.parametrize("backend", envs.BRAX_BACKENDS)
@pytest.mark.slow
def test_brax_env_on_every_backend(backend):
    env = envs.make("brax:inverted_pendulum", backend=backend)
    _, (obs, reward, _) = _rollout(env, steps=5)
    assert obs.shape == (5, envs.observation_size(env))
    assert np.isfinite(np.asarray(obs)).all() and np.isfinite(np.asarray(reward)).all()


def test_bad_names_and_backends():
    with pytest.raises(RlxError, match="Did you mean 'pendulum_swingup'"):
        envs.make("pendulum_swingupp")
    with pytest.raises(RlxError, match="Allowed: generalized, mjx, positional, spring"):
        envs.make("brax:ant", backend="warp")
    with pytest.raises(RlxError, match="bad keyword"):
        envs.make("pendulum_swingup", nonsense=1)


def _wrapped_rollout(env, episode_length: int, steps: int, n: int = 4, action=None):
    tenv = envs.wrap_for_training(env, episode_length)

    def roll(key):
        state = tenv.reset(jax.random.split(key, n))

        def body(s, _):
            a = jnp.ones((n, env.action_size)) if action is None else action
            s = tenv.step(s, a)
            return s, (s.obs, s.info["final_obs"], s.done, s.info["truncation"],
                       s.info["episode_metrics"]["length"])  # fmt: skip

        return jax.lax.scan(body, state, None, length=steps)

    return smoke_jit(roll)(jax.random.PRNGKey(3))


def test_time_out_is_truncation_and_keeps_final_obs():
    env = envs.make("pendulum_swingup")
    _, (obs, final_obs, done, trunc, length) = _wrapped_rollout(env, episode_length=5, steps=12)
    done, trunc = np.asarray(done), np.asarray(trunc)
    np.testing.assert_array_equal(done[:, 0], [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(
        trunc, done
    )  # pendulum never terminates: every done is a time-out
    assert float(length[4, 0]) == 5.0
    # At the time-out the observation is a fresh reset, the final observation the reached state.
    assert not np.allclose(obs[4], final_obs[4])
    np.testing.assert_allclose(obs[3], final_obs[3])
    # Resets resample: two episodes of the same env start from different states.
    assert not np.allclose(obs[4, 0], obs[9, 0])


def test_termination_is_not_truncation():
    env = envs.make("cartpole_swingup")
    _, (_, final_obs, done, trunc, _) = _wrapped_rollout(env, episode_length=500, steps=200)
    done, trunc = np.asarray(done), np.asarray(trunc)
    assert done.sum() > 0, "full force one way must drive the cart off the track"
    assert trunc.sum() == 0
    first = np.argmax(done[:, 0] > 0)
    assert abs(float(final_obs[first, 0, 0])) > 2.4  # final cart position beyond the track limit
