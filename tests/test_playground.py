"""MuJoCo Playground environments behind rlx.envs.make: the registry matches Playground's,
unavailable tasks are refused with their reason (no download is attempted), the adapter steps
under rlx's training wrappers with time-outs kept apart from terminations, and the swing-up
baselines succeed where zero action does not."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.envs import playground
from smoke import smoke_jit

from rlx import envs
from rlx.errors import RlxError


def test_registry_covers_playgrounds_dm_control_suite():
    from mujoco_playground import registry

    ours = set(playground.DMC_TASKS) | set(playground.BROKEN)
    assert ours == set(registry.dm_control_suite.ALL_ENVS)
    listed = envs.names()
    assert "playground:CheetahRun" in listed and "playground:ReacherHard" not in listed


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("playground:Go1JoystickFlatTerrain", "downloads robot models .* unavailable offline"),
        ("playground:PandaPickCube", "downloads robot models"),
        ("playground:ReacherHard", "unavailable: its loader calls MjSpec.find_body"),
        ("playground:CartpoleSwingupp", "Did you mean 'playground:CartpoleSwingup'"),
    ],
)
def test_unavailable_and_unknown_tasks_are_one_error(name, message, monkeypatch):
    import subprocess

    def no_network(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(subprocess, "run", no_network)
    monkeypatch.setattr(subprocess, "check_call", no_network)
    with pytest.raises(RlxError, match=message):
        envs.make(name)


def test_bad_config_keyword_names_the_allowed_ones():
    with pytest.raises(RlxError, match=r"bad keyword.*nonsense.*its config has: .*ctrl_dt"):
        envs.make("playground:PointMass", nonsense=1)
    with pytest.raises(RlxError, match=r"JAX implementation only .* got impl='warp'"):
        envs.make("playground:PointMass", impl="warp")


@pytest.mark.slow
def test_time_out_is_truncation_not_termination():
    env = envs.make("playground:CartpoleSwingup")
    assert env.episode_length == 1000 and env.action_repeat == 1
    tenv = envs.training_env(env, length=4)

    def roll(key):
        state = tenv.reset(jax.random.split(key, 2))

        def body(s, _):
            s = tenv.step(s, jnp.zeros((2, 1)))
            return s, (s.done, s.info["truncation"], s.obs, s.info["final_obs"])

        return jax.lax.scan(body, state, None, length=6)

    first_obs = smoke_jit(tenv.reset)(jax.random.split(jax.random.PRNGKey(0), 2)).obs
    done, trunc, obs, final_obs = map(np.asarray, smoke_jit(roll)(jax.random.PRNGKey(0))[1])
    assert obs.shape == (6, 2, 5) and np.isfinite(obs).all()
    np.testing.assert_array_equal(done[:, 0], [0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(trunc, done)  # every end is a time-out here
    np.testing.assert_allclose(obs[3], first_obs, atol=1e-6)  # restarted from its first state
    assert not np.allclose(final_obs[3], obs[3])  # ... while the final obs is kept


@pytest.mark.parametrize("name", ["playground:PendulumSwingup", "playground:CartpoleSwingup"])
@pytest.mark.slow
def test_swingup_baseline_reaches_the_goal_and_zero_action_does_not(name):
    env = envs.make(name)
    assert envs.has_baseline(env) and envs.outcome_metrics(env) == ("goal_reached",)
    tenv = envs.training_env(env)

    def final_goal(key, gain):
        state = tenv.reset(jax.random.split(key, 8))

        def body(s, _):
            return tenv.step(s, gain * env.baseline_policy(s.obs)), None

        return jax.lax.scan(body, state, None, length=600)[0].metrics["goal_reached"]

    run = jax.jit(final_goal)
    assert float(run(jax.random.PRNGKey(1), 1.0).mean()) == 1.0
    assert float(run(jax.random.PRNGKey(1), 0.0).mean()) == 0.0


@pytest.mark.slow
def test_agency_transfer_runs_on_a_playground_swingup_with_its_baseline_in_charge():
    import rlx

    small = dict(num_envs=4, unroll_length=10, utd_ratio=0.25, batch_size=64, hidden=(32, 32),
                 learning_starts=400, episode_length=400, total_steps=4_800)  # fmt: skip
    rec = rlx.run("agency_td3", "playground:PendulumSwingup", seeds=1, overrides=small,
                  num_evals=2, eval_episodes=2, progress=False)  # fmt: skip
    curve = rec["runs"][0]["curve"]
    # Early in training the baseline acts on most steps, and its episodes end upright.
    assert curve["train/baseline_share"][1] > 0.5, curve["train/baseline_share"]
    assert curve["train/episode_goal_reached"][1] > 0.5, curve["train/episode_goal_reached"]
    assert np.isfinite(curve["eval/return"]).all()


def test_every_playground_task_is_available_or_unavailable_with_a_reason():
    """`names()` (buildable) and `unavailable()` (refused with a reason) are disjoint and
    cover Playground's DM Control Suite."""
    from mujoco_playground import registry

    built = {name.removeprefix(playground.PREFIX) for name in playground.names()}
    refused = playground.unavailable()
    assert not built & set(refused), built & set(refused)
    assert set(registry.dm_control_suite.ALL_ENVS) <= built | set(refused)
    assert all(reason for reason in refused.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(playground.names()))
def test_every_available_playground_task_resets_and_steps_under_jit(name):
    """Each available task builds, resets and takes one step in one jitted program, with
    finite observations and reward of the declared sizes."""
    env = envs.make(name)

    def reset_and_step(key):
        state = env.reset(key)
        return state, env.step(state, jnp.zeros(env.action_size))

    first, second = smoke_jit(reset_and_step)(jax.random.PRNGKey(0))
    for state in (first, second):
        assert state.obs.shape == (env.observation_size,)
        assert bool(jnp.isfinite(state.obs).all()), name
    assert bool(jnp.isfinite(second.reward)) and float(second.done) == 0.0
