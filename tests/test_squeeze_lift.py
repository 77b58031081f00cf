"""Squeeze-lift-place (HABC's fast stand-in task): contact rules (no hand passes through the
box), long random rollouts stay physical, the scripted expert succeeds, the danger predicate
(calibrated against exploration noise) and the recovered predicate, bad levels refused."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.envs.contract import InterventionEnv
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
    for _ in range(6):
        s2 = env.step(s2, jnp.array([0.0, 1.0, 0.0, 1.0]))
    assert float(s2.pipeline_state["box"][1]) == pytest.approx(w + 6 * env.speed, abs=1e-5)
    assert not bool(env.danger(s2)) and bool(env.recovered(s2))
    opened = env.step(s2, jnp.array([-1.0, 0.0, 1.0, 0.0]))  # let go in the air
    assert float(opened.metrics["dropped"]) == 1.0
    # Hands 0.02 outside the faces could still catch it: falling, not yet lost.
    assert not bool(env.danger(opened)) and not bool(env.recovered(opened))
    for _ in range(2):  # hands 0.10 outside the faces (> release): let go
        opened = env.step(opened, jnp.array([-1.0, 0.0, 1.0, 0.0]))
    assert float(opened.pipeline_state["box"][1]) > w and bool(env.danger(opened))
    fell = env.step(opened, jnp.zeros(4))
    assert float(fell.pipeline_state["box"][1]) < float(opened.pipeline_state["box"][1])


def _placed(s, hands, box_z=None):
    """State `s` with the hands at `hands` (and the box's centre at height `box_z`), its
    observation to match."""
    ps = dict(s.pipeline_state, hands=jnp.asarray(hands, jnp.float32))
    if box_z is not None:
        ps["box"] = ps["box"].at[1].set(box_z)
    obs = jnp.concatenate([ps["hands"], ps["box"], ps["target"][None], ps["flags"]])
    return s.replace(pipeline_state=ps, obs=obs)


@pytest.mark.parametrize("level", [1, 3])
def test_a_hand_on_the_far_side_neither_passes_through_nor_grips(level):
    env = SqueezeLift(level)
    s = env.reset(jax.random.PRNGKey(0))
    bx, w = float(s.pipeline_state["box"][0]), env.w
    squeeze = 0.5 * (env.p_grip + env.p_max)
    # The right hand squeezes its own face; the left hand is right of the box (just outside its
    # right face, or inside its right half), level with it.
    for x_l in (bx + w + 0.005, bx + 0.5 * w):
        placed = _placed(s, [x_l, w, bx + w - squeeze, w])
        n = env.step(placed, jnp.zeros(4))
        assert float(n.pipeline_state["hands"][0]) >= bx + w - 1e-6, x_l  # not through the box
        assert float(n.metrics["gripped"]) == 0.0, x_l
        assert float(env.penetrations(n.pipeline_state["hands"], n.pipeline_state["box"])[0]) == 0
    # Each hand moving towards the box from its far side stops at that face.
    for hands, act, face in (
        ([bx + w + 0.15, w, bx + w + 0.3, w], [-1.0, 0, 0, 0], bx + w),
        ([bx - w - 0.3, w, bx - w - 0.15, w], [0, 0, 1.0, 0], bx - w),
    ):
        n = _placed(s, hands)
        for _ in range(10):
            n = env.step(n, jnp.array(act))
        x = float(n.pipeline_state["hands"][0 if act[0] else 2])
        assert x == pytest.approx(face, abs=1e-6)
        assert float(n.pipeline_state["box"][0]) == pytest.approx(bx) and not n.metrics["gripped"]


def test_danger_and_recovered_on_hand_built_states():
    env = SqueezeLift(2)
    s = env.reset(jax.random.PRNGKey(0))
    bx, w, squeeze = float(s.pipeline_state["box"][0]), env.w, 0.5 * (env.p_grip + env.p_max)
    z = w + 0.2  # in the air
    grip = [bx - w + squeeze, z, bx + w - squeeze, z]
    held = env.step(_placed(s, grip, z), jnp.zeros(4))  # the step sets the gripped flag
    cases = {  # name: (state, danger, recovered)
        "held in the air": (held, False, True),
        "falling, hands let go": (_placed(s, [bx - w - 0.1, z, bx + w + 0.1, z], z), True, False),
        "falling, hands far above": (
            _placed(s, [grip[0], z + w + 0.1, grip[2], z], z),
            True,
            False,
        ),
        "slipping, hands at the faces": (
            _placed(s, [bx - w + 0.005, z, bx + w, z], z),
            False,
            False,
        ),
        "on the table, not held": (s, False, True),
    }
    for name, (state, danger, recovered) in cases.items():
        assert bool(env.danger(state)) == danger, name
        assert bool(env.recovered(state)) == recovered, name
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), *(c[0] for c in cases.values()))
    assert np.asarray(env.recovered(batch)).tolist() == [c[2] for c in cases.values()]
    assert SqueezeLift.ends_at_success and isinstance(env, InterventionEnv)


def _noisy_expert_rates(level: int, sigma: float = 0.1, episodes: int = 256, steps: int = 150):
    """(success rate, share of episodes where danger fires up to their success step) of the
    scripted expert with HABC's exploration noise: clip(expert(obs) + sigma N(0, 1), -1, 1)."""
    env = SqueezeLift(level)

    def noisy(obs, key):
        return jnp.clip(env.baseline_policy(obs) + sigma * jax.random.normal(key, (4,)), -1, 1)

    states = _rollout(env, noisy, episodes, steps, key=10 + level)
    won = np.asarray(states.metrics["goal_reached"]) > 0
    last = np.where(won.any(0), won.argmax(0), steps - 1)
    live = np.arange(steps)[:, None] <= last[None]
    danger = np.asarray(jax.vmap(env.danger)(states)) & live
    return won.any(0).mean(), danger.any(0).mean()


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.slow
def test_exploration_noise_rarely_trips_danger(level):
    # Measured (256 episodes): success 100/100/87%, danger 0/0.4/0.8% on levels 1/2/3 (with the
    # earlier margin of 0.002: 41/85/100%).
    success, tripped = _noisy_expert_rates(level)
    assert success >= 0.8, success
    assert tripped <= 0.05, tripped


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
    for knob in ("margin", "release"):
        with pytest.raises(RlxError, match=f"{knob} must be a number >= 0, got -0.1"):
            SqueezeLift(1, **{knob: -0.1})
