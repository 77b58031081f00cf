"""The MJX bimanual squeeze-lift-place task: long random rollouts stay physical (no NaN, the box
never sinks into the table, the pads never pass through it), the scripted expert succeeds from
at least 95% of initial states, the danger predicate and its placement tube, bad levels refused."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.envs.bimanual_mjx import PAD, BimanualSqueezeLift

from rlx import envs
from rlx.errors import RlxError


def _rollout(env, policy, episodes, steps, key=0):
    """(box positions, hand positions, success, danger) stacked [steps, episodes, ...]."""

    def episode(k):
        k_reset, k_act = jax.random.split(k)

        def body(s, k_step):
            n = env.step(s, policy(s.obs, k_step))
            return n, (n.obs[12:15], n.obs[0:6], n.metrics["goal_reached"], env.danger(n))

        return jax.lax.scan(body, env.reset(k_reset), jax.random.split(k_act, steps))[1]

    keys = jax.random.split(jax.random.PRNGKey(key), episodes)
    return jax.jit(jax.vmap(episode, out_axes=1))(keys)


def _random(obs, key):
    return jax.random.uniform(key, (6,), minval=-1.0, maxval=1.0)


@pytest.fixture(scope="module", params=[1, 3])
def env(request):
    return BimanualSqueezeLift(request.param, placement_danger=True)


def test_random_rollouts_stay_physical():
    env = BimanualSqueezeLift(3)
    box, hands, _, _ = _rollout(env, _random, 16, 300)
    assert np.isfinite(np.asarray(box)).all() and np.isfinite(np.asarray(hands)).all()
    assert float(box[..., 2].min()) > env.w - 0.005  # no sinking into the table
    # A pad never ends up inside the box: its centre stays outside the box's x extent widened by
    # the pad, wherever it is level with the box and over it in y.
    box, hands = np.asarray(box), np.asarray(hands)
    for h in (0, 3):
        dx = np.abs(hands[..., h] - box[..., 0])
        over = (np.abs(hands[..., h + 1] - box[..., 1]) < env.w) & (
            np.abs(hands[..., h + 2] - box[..., 2]) < env.w
        )
        assert (dx[over] > env.w + PAD - 0.01).all()


def test_expert_succeeds_from_at_least_95_percent(env):
    _, _, success, danger = _rollout(env, lambda obs, k: env.baseline_policy(obs), 64, 150, key=7)
    rate = float(jnp.max(success, axis=0).mean())
    assert rate >= 0.95, rate
    # The expert's own motion is never dangerous, placement tube included.
    assert not bool(np.asarray(danger).any())


def test_danger_fires_when_the_box_is_dropped():
    env = BimanualSqueezeLift(1)

    def grab_then_let_go(obs, key):
        expert = env.baseline_policy(obs)
        spread = jnp.array([-1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
        return jnp.where(obs[21] > 0, spread, expert)  # once lifted, pull the hands apart

    _, _, success, danger = _rollout(env, grab_then_let_go, 8, 120, key=3)
    assert bool(np.asarray(danger).any(axis=0).all())
    assert not bool(np.asarray(success).any())


def _obs(box, velocity, target, lifted, w):
    """A hand-made observation: both pads at the box's faces (held, not slipping), upright."""
    bx, by, bz = box
    hands = [bx - w - PAD, by, bz, bx + w + PAD, by, bz]
    return jnp.array([*hands, *hands, *box, *velocity, 1.0, *target, float(lifted)], jnp.float32)


def test_placement_tube_fires_off_the_path_only_when_enabled():
    plain, tube = BimanualSqueezeLift(1), BimanualSqueezeLift(1, placement_danger=True)
    w, target = plain.w, (0.3, 0.0)
    cases = {  # name: (observation, danger with the tube)
        "set down 10 cm off target": (_obs((0.2, 0.0, w), (0, 0, 0), target, 1, w), True),
        "set down 2 cm off target": (_obs((0.28, 0.0, w), (0, 0, 0), target, 1, w), False),
        "carried away at 0.3 m/s": (_obs((0.2, 0.0, 0.2), (-0.3, 0, 0), target, 1, w), True),
        "carried across at 0.3 m/s": (_obs((0.2, 0.0, 0.2), (0, 0.3, 0), target, 1, w), False),
        "carried towards it": (_obs((0.2, 0.0, 0.2), (0.3, 0, 0), target, 1, w), False),
        "on the table, never lifted": (_obs((0.2, 0.0, w), (0, 0, 0), target, 0, w), False),
    }
    for name, (obs, expected) in cases.items():
        state = SimpleNamespace(obs=obs)
        assert bool(tube.danger(state)) == expected, name
        assert not bool(plain.danger(state)), name
    batch = SimpleNamespace(obs=jnp.stack([o for o, _ in cases.values()]))
    assert np.asarray(tube.danger(batch)).tolist() == [e for _, e in cases.values()]


def test_bad_level_and_registry():
    with pytest.raises(RlxError, match="placement_danger must be true or false, got 'yes'"):
        BimanualSqueezeLift(1, placement_danger="yes")
    assert envs.make("squeeze_lift_mjx_l1", placement_danger=True).placement_danger
    with pytest.raises(RlxError, match="level must be one of 1, 2, 3"):
        BimanualSqueezeLift(4)
    assert envs.make("squeeze_lift_mjx_l2").level == 2
