"""The MJX bimanual squeeze-lift-place task: long random rollouts stay physical (no NaN, the box
never sinks into the table, the pads never pass through it), the scripted expert succeeds from
at least 95% of initial states, the danger predicate and its placement tube, the recovered
predicate, bad levels refused."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.envs.bimanual_mjx import PAD, BimanualSqueezeLift
from rlx.envs.contract import InterventionEnv

from rlx import envs
from rlx.errors import RlxError


def _random(obs, key):
    return jax.random.uniform(key, (6,), minval=-1.0, maxval=1.0)


def _grab_then_let_go(env):
    def policy(obs, key):
        spread = jnp.array([-1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
        return jnp.where(obs[21] > 0, spread, env.baseline_policy(obs))  # once lifted, let go

    return policy


EXPERT_EPISODES, EXPERT_STEPS = 64, 150


def _rollouts(level: int):
    """One compiled program per level (an MJX compile is the cost of these tests): 64 expert
    episodes of 150 steps, and episodes of a second policy: on level 1, 8 of 150 steps of the
    expert until the box is lifted, then the hands pulled apart; on level 3, 16 of 300 steps
    of uniform random actions (the expert's run as long, its first 150 steps scored).
    Both envs' danger predicates are recorded, with and without the placement tube; the
    physics is the same. Returns (tube env, {group: (box, hands, success, danger, tube danger)}),
    each array stacked [steps, episodes, ...]."""
    tube = BimanualSqueezeLift(level, placement_danger=True)
    plain = BimanualSqueezeLift(level)
    second = _grab_then_let_go(tube) if level == 1 else _random
    groups = {"expert": (EXPERT_EPISODES, 7), "second": (8 if level == 1 else 16, 3)}
    steps = EXPERT_STEPS if level == 1 else 300

    def episode(k, is_expert):
        k_reset, k_act = jax.random.split(k)

        def body(s, k_step):
            act = jnp.where(is_expert, tube.baseline_policy(s.obs), second(s.obs, k_step))
            n = tube.step(s, act)
            out = (n.obs[12:15], n.obs[0:6], n.metrics["goal_reached"], plain.danger(n))
            return n, (*out, tube.danger(n))

        return jax.lax.scan(body, tube.reset(k_reset), jax.random.split(k_act, steps))[1]

    keys = jnp.concatenate([jax.random.split(jax.random.PRNGKey(k), n) for n, k in groups.values()])
    flags = jnp.arange(len(keys)) < EXPERT_EPISODES
    out = [np.asarray(a) for a in jax.jit(jax.vmap(episode, out_axes=1))(keys, flags)]
    return tube, {
        "expert": tuple(a[:EXPERT_STEPS, :EXPERT_EPISODES] for a in out),
        "second": tuple(a[:, EXPERT_EPISODES:] for a in out),
    }


@pytest.fixture(scope="module")
def level1():
    return _rollouts(1)


@pytest.fixture(scope="module")
def level3():
    return _rollouts(3)


@pytest.mark.slow
def test_random_rollouts_stay_physical(level3):
    env, runs = level3
    box, hands, _, _, _ = runs["second"]
    assert np.isfinite(box).all() and np.isfinite(hands).all()
    assert float(box[..., 2].min()) > env.w - 0.005  # no sinking into the table
    # A pad never ends up inside the box: its centre stays outside the box's x extent widened by
    # the pad, wherever it is level with the box and over it in y.
    for h in (0, 3):
        dx = np.abs(hands[..., h] - box[..., 0])
        over = (np.abs(hands[..., h + 1] - box[..., 1]) < env.w) & (
            np.abs(hands[..., h + 2] - box[..., 2]) < env.w
        )
        assert (dx[over] > env.w + PAD - 0.01).all()


@pytest.mark.parametrize("level", ["level1", "level3"])
@pytest.mark.slow
def test_expert_succeeds_from_at_least_95_percent(level, request):
    _, runs = request.getfixturevalue(level)
    _, _, success, danger, tube_danger = runs["expert"]
    rate = float(success.max(axis=0).mean())
    assert rate >= 0.95, rate
    # The expert's own motion is never dangerous, placement tube included.
    assert not danger.any() and not tube_danger.any()


def test_danger_fires_when_the_box_is_dropped(level1):
    _, runs = level1
    _, _, success, danger, _ = (a[:120] for a in runs["second"])
    assert bool(danger.any(axis=0).all())
    assert not bool(success.any())


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


def test_recovered_when_held_or_resting_and_never_in_danger():
    plain, tube = BimanualSqueezeLift(1), BimanualSqueezeLift(1, placement_danger=True)
    w, target = plain.w, (0.3, 0.0)

    def obs(box, velocity=(0, 0, 0), open_by=0.0, sag=0.0, up_z=1.0, lifted=1):
        o = _obs(box, velocity, target, lifted, plain.w)
        o = o.at[jnp.array([0, 6])].add(-open_by).at[jnp.array([3, 9])].add(open_by)
        return o.at[jnp.array([2, 5, 8, 11])].add(sag).at[18].set(up_z)

    cases = {  # name: (observation, recovered without the tube, with it)
        "held in the air": (obs((0.2, 0.0, 0.2), (0.2, 0, 0)), True, True),
        "held on the table": (obs((0.0, 0.0, w), lifted=0), True, True),
        "resting, hands apart": (obs((0.0, 0.0, w), open_by=0.1, lifted=0), True, True),
        "falling, pads 5 cm off": (obs((0.2, 0.0, 0.2), (0, 0, -0.5), open_by=0.05), False, False),
        "slipping down between the pads": (obs((0.2, 0.0, 0.2), sag=0.04), False, False),
        "held, tilted by 60 degrees": (obs((0.2, 0.0, 0.2), up_z=0.5), False, False),
        "sliding on the table": (obs((0.0, 0.0, w), (0.3, 0, 0), open_by=0.1), False, False),
        "set down 10 cm off target": (obs((0.2, 0.0, w)), True, False),
    }
    for name, (o, expected, with_tube) in cases.items():
        state = SimpleNamespace(obs=o)
        assert bool(plain.recovered(state)) == expected, name
        assert bool(tube.recovered(state)) == with_tube, name
        assert not (bool(tube.recovered(state)) and bool(tube.danger(state))), name
    batch = SimpleNamespace(obs=jnp.stack([c[0] for c in cases.values()]))
    assert np.asarray(plain.recovered(batch)).tolist() == [c[1] for c in cases.values()]
    assert BimanualSqueezeLift.ends_at_success and isinstance(plain, InterventionEnv)


def test_bad_level_and_registry():
    with pytest.raises(RlxError, match="placement_danger must be true or false, got 'yes'"):
        BimanualSqueezeLift(1, placement_danger="yes")
    assert envs.make("squeeze_lift_mjx_l1", placement_danger=True).placement_danger
    with pytest.raises(RlxError, match="level must be one of 1, 2, 3"):
        BimanualSqueezeLift(4)
    assert envs.make("squeeze_lift_mjx_l2").level == 2
