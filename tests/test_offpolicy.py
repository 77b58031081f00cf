"""Off-policy learners and agency transfer: replay ring, arbitration rule, lambda solve,
TD3/SAC learning on pendulum swing-up, the agency hand-over, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.algos import agency_transfer as at

import rlx
from rlx import replay, runner
from rlx.errors import RlxError

SMALL = dict(num_envs=10, unroll_length=10, utd_ratio=0.5, batch_size=128, hidden=(64, 64),
             learning_starts=2000)  # fmt: skip
UNTRAINED = -1400.0  # untrained deterministic actors score about -1750 to -1830 here
LEARNED = -700.0  # the energy-pumping + LQR baseline scores about -290


# ------------------------------------------------------------------------------ replay ring


def test_replay_add_wraps_and_respects_mask():
    buf = replay.init({"x": jnp.zeros((2,))}, capacity=4)
    items = {"x": jnp.arange(6.0).reshape(3, 2)}  # rows [0,1], [2,3], [4,5]
    buf = replay.add(buf, items, jnp.array([True, False, True]))
    np.testing.assert_array_equal(buf.data["x"][:2], [[0, 1], [4, 5]])
    assert int(buf.insert) == 2 and int(buf.size) == 2
    more = {"x": 10.0 + jnp.arange(6.0).reshape(3, 2)}  # rows [10,11], [12,13], [14,15]
    buf = replay.add(buf, more)  # fills rows 2, 3, then wraps to row 0
    np.testing.assert_array_equal(buf.data["x"], [[14, 15], [4, 5], [10, 11], [12, 13]])
    assert int(buf.insert) == 1 and int(buf.size) == 4


def test_replay_write_longer_than_capacity_keeps_the_newest_rows():
    buf = replay.init({"x": jnp.zeros(())}, capacity=3)
    buf = jax.jit(replay.add)(buf, {"x": jnp.arange(7.0)})
    assert sorted(np.asarray(buf.data["x"]).tolist()) == [4.0, 5.0, 6.0]
    assert int(buf.size) == 3


def test_replay_samples_only_filled_rows():
    buf = replay.init({"x": jnp.zeros(())}, capacity=100)
    buf = replay.add(buf, {"x": jnp.array([7.0, 8.0])})
    batch = replay.sample(buf, jax.random.PRNGKey(0), 256)
    assert set(np.asarray(batch["x"]).tolist()) == {7.0, 8.0}


# ------------------------------------------------------------------ agency-transfer primitives


@pytest.mark.parametrize("jit", [False, True])
def test_arbitration_rule_hand_cases(jit):
    q = jnp.array([1.00, 1.00, 0.50, 0.50, 2.00])
    best = jnp.array([-jnp.inf, 0.995, 0.50, 0.50, 1.00])
    p_rel = jnp.array([0.0, 0.0, 0.3, 0.3, 0.0])
    u = jnp.array([0.9, 0.9, 0.2, 0.4, 0.9])
    fn = jax.jit(at.arbitrate) if jit else at.arbitrate
    use, new_best = fn(q, best, p_rel, u, jnp.float32(0.01))
    # env 0: first step of an episode (best = -inf) is always certified;
    # env 1: q - best = 0.005 < nu: not certified, not relaxed -> baseline;
    # env 2: not certified, relaxed (0.2 < 0.3) -> learner, best unchanged;
    # env 3: not certified, not relaxed (0.4 >= 0.3) -> baseline;
    # env 4: certified (2 > 1.01) -> learner, best <- 2.
    np.testing.assert_array_equal(use, [True, False, True, False, True])
    np.testing.assert_allclose(new_best, [1.0, 0.995, 0.5, 0.5, 2.0])


@pytest.mark.parametrize(
    ("lam", "length"), [(0.96, 200.0), (0.96, 1500.0), (0.5, 10.0), (0.999, 1000.0), (0.0, 50.0)]
)
def test_lambda_solve_inverts_the_geometric_sum(lam, length):
    target = sum(lam**t for t in range(int(length)))  # S_L(lambda) by the plain sum
    np.testing.assert_allclose(at.geometric_sum(jnp.float32(lam), jnp.float32(length)), target,
                               rtol=1e-4)  # fmt: skip
    solved = jax.jit(at.solve_lambda)(jnp.float32(target), jnp.float32(length))
    np.testing.assert_allclose(solved, lam, atol=1e-4)


def test_schedule_endpoints_and_midpoint():
    p0, lam0, length, total, af = 0.9, 0.96, 200.0, 1000, 0.5
    args = (total, jnp.float32(af), jnp.float32(p0), jnp.float32(lam0), jnp.float32(length))
    p, lam = at.schedule(jnp.float32(0.0), *args)
    np.testing.assert_allclose([p, lam], [p0, lam0], atol=1e-4)
    p, lam = at.schedule(jnp.float32(500.0), *args)  # frac = 500 / (0.5 * 1000) = 1
    assert float(p) == 1.0 and float(lam) == 1.0
    # frac = 0.5: p = 0.95; ref0 = 0.9 * S_200(0.96) = 0.9 * 24.9929 = 22.4936;
    # ref = 22.4936 + (200 - 22.4936) / 2 = 111.2468; S_200(lambda) = ref / p = 117.1019.
    p, lam = at.schedule(jnp.float32(250.0), *args)
    np.testing.assert_allclose(p, 0.95, atol=1e-6)
    np.testing.assert_allclose(at.geometric_sum(lam, jnp.float32(length)), 117.1019, rtol=1e-3)


def test_episode_end_resets_only_finished_envs():
    cfg = at.TD3.Config(length_window=3)
    arb = at._init(cfg, num_envs=3, episode_length=100)
    arb = arb.replace(best_q=jnp.array([5.0, 6.0, 7.0]), p_rel=jnp.array([0.1, 0.2, 0.3]))
    done = jnp.array([1.0, 0.0, 1.0])
    out = at._end_episodes(cfg, arb, done, jnp.array([40.0, 99.0, 60.0]), jnp.int32(0))
    assert np.isneginf(out.best_q[0]) and np.isneginf(out.best_q[2]) and out.best_q[1] == 6.0
    np.testing.assert_allclose(out.p_rel, [0.9, 0.2, 0.9])  # p_start = p0 at frac = 0
    assert int(out.episodes) == 2
    np.testing.assert_allclose(out.lengths[:2], [40.0, 60.0])
    # lambda solved for L = mean(40, 60) = 50 at frac 0: S_50(lambda) = S_50(lambda0).
    np.testing.assert_allclose(out.lam, 0.96, atol=1e-4)


# ------------------------------------------------------------------------------ learning


def _returns(rec):
    return np.array([r["curve"]["eval/return"] for r in rec["runs"]])


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_offpolicy_learner_learns_pendulum_swingup(algo):
    rec = rlx.run(algo, "pendulum_swingup", seeds=2, total_steps=40_000, overrides=SMALL,
                  num_evals=2, eval_episodes=16, progress=False)  # fmt: skip
    returns = _returns(rec)
    assert returns[:, 0].mean() < UNTRAINED, returns[:, 0]
    assert returns[:, -1].mean() > LEARNED, returns[:, -1]
    assert rec["execution"]["chunk_traces"] == 1


def test_agency_transfer_hands_over_to_a_standalone_learner():
    rec = rlx.run("agency_td3", "pendulum_swingup", seeds=2, total_steps=40_000,
                  overrides=SMALL, num_evals=4, eval_episodes=16, progress=False)  # fmt: skip
    curves = [r["curve"] for r in rec["runs"]]
    share = np.array([c["train/baseline_share"] for c in curves])  # NaN at step 0
    goal = np.array([c["train/episode_goal_reached"] for c in curves])
    # First quarter: the baseline acts on most steps and every training episode is solved.
    assert share[:, 1].min() > 0.5, share
    assert goal[:, 1].min() > 0.9, goal
    # Baseline disabled after anneal_frac = 0.9 of the budget: the learner acts (almost) alone.
    assert share[:, -1].max() < 0.15, share
    # The standalone learner (no baseline at evaluation) has learned the task.
    returns = _returns(rec)
    assert returns[:, 0].mean() < UNTRAINED and returns[:, -1].mean() > LEARNED, returns


def test_plain_td3_training_episodes_fail_early_where_agency_transfer_succeeds():
    rec = rlx.run("td3", "pendulum_swingup", seeds=2, total_steps=10_000, overrides=SMALL,
                  num_evals=1, eval_episodes=4, progress=False)  # fmt: skip
    goal = [r["curve"]["train/episode_goal_reached"][1] for r in rec["runs"]]
    assert max(goal) < 0.5, goal


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("algo", "env", "overrides", "message"),
    [
        ("agency_td3", "brax:ant", {}, "needs an environment with a baseline"),
        ("residual_sac", "brax:hopper", {}, "needs an environment with a baseline"),
        ("baseline", "brax:halfcheetah", {}, "needs an environment with a baseline"),
        ("agency_td3", "pendulum_swingup", {"anneal_frac": 0.0}, "anneal_frac must be in (0, 1]"),
        ("agency_sac", "pendulum_swingup", {"anneal_frac": 1.5}, "anneal_frac must be in (0, 1]"),
        ("agency_td3", "pendulum_swingup", {"p0": 1.2}, "p0 must be a probability in [0, 1]"),
        ("agency_td3", "pendulum_swingup", {"lambda0": -0.1}, "lambda0 must be in [0, 1]"),
        ("agency_td3", "pendulum_swingup", {"store_action": "both"}, "store_action must be"),
        ("td3", "pendulum_swingup", {"utd_ratio": 0.333}, "whole number of gradient steps"),
        ("td3", "pendulum_swingup", {"utd_ratio": 0.5, "policy_frequency": 3}, "policy_frequency"),
        ("sac", "pendulum_swingup", {"gamma": 1.5}, "gamma must be in [0, 1]"),
    ],
)
def test_bad_offpolicy_input_is_refused(algo, env, overrides, message):
    base = {"num_envs": 10, "unroll_length": 10} if algo == "baseline" else SMALL
    with pytest.raises(RlxError, match=message.replace("(", r"\(").replace("[", r"\[")):
        runner.plan(algo, env, total_steps=16_000, overrides={**base, **overrides})


def test_bad_probability_in_a_grid_is_refused():
    with pytest.raises(RlxError, match="p0 must be"):
        runner.plan("agency_sac", "pendulum_swingup", total_steps=16_000, overrides=SMALL,
                    grid={"p0": [0.5, 1.5]})  # fmt: skip
