"""Squeeze-lift-place (HABC's fast stand-in task): contact rules, long random rollouts stay
physical, the scripted expert succeeds, the danger predicate, bad levels refused."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.envs.squeeze_lift import LEVELS, SqueezeLift

from rlx import envs
from rlx.errors import RlxError


def _rollout(env, policy, episodes, steps, key=0):
    """States of `episodes` episodes of `steps` steps (no resets), stacked [steps, episodes]."""

    def episode(k):
        k_reset, k_act = jax.random.split(k)

        def body(s, k_step):
            n = env.step(s, policy(s.obs, k_step))
            return n, n

        return jax.lax.scan(body, env.reset(k_reset), jax.random.split(k_act, steps))[1]

    keys = jax.random.split(jax.random.PRNGKey(key), episodes)
    return jax.jit(jax.vmap(episode, out_axes=1))(keys)


def _random(obs, key):
    return jax.random.uniform(key, (4,), minval=-1.0, maxval=1.0)


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.slow
def test_long_random_rollouts_stay_physical(level):
    env = SqueezeLift(level)
    states = _rollout(env, _random, 64, 600)
    ps = states.pipeline_state
    hands, box = np.asarray(ps["hands"]), np.asarray(ps["box"])
    assert np.isfinite(hands).all() and np.isfinite(box).all()
    assert (box[..., 1] >= env.w - 1e-6).all()  # never through the table
    assert (hands[..., [1, 3]] >= 0).all() and (np.abs(hands) <= 1 + 1e-6).all()
    # No tunnelling: a hand level with the box is never deeper than p_max in its face.
    p_l, p_r = jax.vmap(jax.vmap(env.penetrations))(ps["hands"], ps["box"])
    assert float(jnp.max(p_l)) <= env.p_max + 1e-5 and float(jnp.max(p_r)) <= env.p_max + 1e-5
    # Random hands almost never lift the box (both must squeeze within the window together).
    assert float(jnp.mean(states.metrics["goal_reached"])) < 0.01


def test_one_hand_cannot_lift_and_a_released_box_falls():
    env = SqueezeLift(1)
    s = env.reset(jax.random.PRNGKey(0))
    bx, w = float(s.pipeline_state["box"][0]), env.w
    squeeze = 0.5 * (env.p_grip + env.p_max)
    one_hand = jnp.array([bx - w + squeeze, w, bx + w + 0.2, w])
    s1 = s.replace(pipeline_state={**s.pipeline_state, "hands": one_hand})
    for _ in range(5):
        s1 = env.step(s1, jnp.array([0.0, 1.0, 0.0, 1.0]))
    assert float(s1.pipeline_state["box"][1]) == pytest.approx(w)
    both = jnp.array([bx - w + squeeze, w, bx + w - squeeze, w])
    s2 = env.step(s.replace(pipeline_state={**s.pipeline_state, "hands": both}), jnp.zeros(4))
    assert float(s2.metrics["gripped"]) == 1.0
    for _ in range(3):
        s2 = env.step(s2, jnp.array([0.0, 1.0, 0.0, 1.0]))
    assert float(s2.pipeline_state["box"][1]) == pytest.approx(w + 3 * env.speed, abs=1e-5)
    assert not bool(env.danger(s2))
    opened = env.step(s2, jnp.array([-1.0, 0.0, 1.0, 0.0]))  # let go in the air
    assert float(opened.metrics["dropped"]) == 1.0 and bool(env.danger(opened))
    fell = env.step(opened, jnp.zeros(4))
    assert float(fell.pipeline_state["box"][1]) < float(opened.pipeline_state["box"][1])


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.slow
def test_expert_succeeds_from_at_least_95_percent_of_initial_states(level):
    env = SqueezeLift(level)
    states = _rollout(env, lambda obs, k: env.baseline_policy(obs), 256, 120, key=level)
    success = np.asarray(states.metrics["goal_reached"]).max(0)
    assert success.mean() >= 0.95, success.mean()


def test_registered_levels_and_bad_level():
    for level, spec in LEVELS.items():
        assert envs.make(f"squeeze_lift_l{level}").w == spec["half_size"]
    for bad in (0, 4, "2", True):
        with pytest.raises(RlxError, match="level must be one of 1, 2, 3"):
            SqueezeLift(bad)
