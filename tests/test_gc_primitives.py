"""The primitives of offline goal-conditioned RL against hand-computed arrays, with and without
jit: trajectory ends, goal relabelling, TRL's midpoints, target and weights, the BCE, the IQE
interval union, DDPG+BC and AWR, implied distances, and the value-accuracy statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from rlx.algos.offline_gc import common as gc
from rlx.algos.offline_gc import goal_sampling as gs
from rlx.algos.offline_gc import trl
from rlx.algos.offline_gc import value_accuracy as va
from rlx.algos.offline_gc.nets import interval_union_length, iqe, unit_gaussian_log_prob

from rlx.data import trajectories

JIT = [False, True]


def _maybe_jit(fn, jit, **kwargs):
    return jax.jit(fn, **kwargs) if jit else fn


def test_trajectory_ends_and_valid_rows():
    terminals = np.array([0, 0, 1, 0, 1, 0, 0], np.float32)  # the last episode is cut
    np.testing.assert_array_equal(trajectories.trajectory_ends(terminals), [2, 2, 2, 4, 4, 6, 6])
    rows = {f: np.zeros((7, 2)) for f in ("observations", "actions", "next_observations")}
    rows.update(terminals=terminals, rewards=np.zeros(7), masks=np.ones(7))
    data = trajectories.arrays(rows, None)
    np.testing.assert_array_equal(data["valid"], [0, 1, 3, 5])
    assert data["val_observations"].shape == (0, 2)


@pytest.mark.parametrize("jit", JIT)
def test_future_rows_stay_in_the_trajectory(jit):
    ends = jnp.array([4, 4, 4, 4, 4, 9, 9, 9, 9, 9])
    rows = jnp.array([0, 3, 5, 8] * 500)
    uniform = _maybe_jit(gs.future_rows, jit, static_argnums=4)(
        jax.random.PRNGKey(0), rows, ends, 0.9, False)  # fmt: skip
    for r, end in ((0, 4), (3, 4), (5, 9), (8, 9)):
        picked = np.asarray(uniform[rows == r])
        assert set(picked.tolist()) == set(range(r + 1, end + 1)), r  # every later row, no other
    geometric = gs.future_rows(jax.random.PRNGKey(1), rows, ends, 0.5, True)
    assert (np.asarray(geometric) > np.asarray(rows)).all()
    assert (np.asarray(geometric) <= np.asarray(ends[rows])).all()
    # Row 0, gamma 0.5: P(j = 1) = 0.5, P(j = 2) = 0.25, P(j = 3) = 0.125, P(j = 4) = 0.125 (cap).
    first = np.asarray(gs.future_rows(jax.random.PRNGKey(2), jnp.zeros(40_000, jnp.int32),
                                      ends, 0.5, True))  # fmt: skip
    np.testing.assert_allclose(np.bincount(first, minlength=5)[1:] / first.size,
                               [0.5, 0.25, 0.125, 0.125], atol=0.01)  # fmt: skip


def test_geometric_offsets_have_the_geometric_law_on_one_two_and_up():
    # gamma = 0.5: P(k) = 0.5^k on {1, 2, ...}, so P(1..5) = 1/2, 1/4, 1/8, 1/16, 1/32 and no 0
    # (an off-by-one, k = floor(...) or 2 + floor(...), moves half the mass to 0 or 2, and the
    # clip at 1 would hide the first from a min check). Binomial SE <= 0.5 / sqrt(n) = 0.0011.
    n = 200_000
    k = np.asarray(gs.geometric_offsets(jax.random.PRNGKey(0), 0.5, (n,)))
    share = np.bincount(k, minlength=7)[:6] / n
    np.testing.assert_allclose(share, [0.0, 1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32], atol=0.005)
    # gamma = 0.99: mean 1 / (1 - gamma) = 100, sd sqrt(gamma) / (1 - gamma) = 99.5, so the
    # sample mean's SE is 99.5 / sqrt(n) = 0.22; 0.6 is below the shift 1 of an off-by-one.
    mean = float(np.asarray(gs.geometric_offsets(jax.random.PRNGKey(1), 0.99, (n,))).mean())
    assert abs(mean - 100.0) < 0.6, mean


@pytest.mark.parametrize("jit", JIT)
def test_goal_rows_mix_current_trajectory_and_random_goals(jit):
    n = 60_000
    ends = jnp.full((1000,), 999)
    rows = jnp.full((n,), 10)
    fn = _maybe_jit(gs.goal_rows, jit, static_argnums=(3, 7))
    goals = np.asarray(fn(jax.random.PRNGKey(0), rows, ends, 1000, 0.2, 0.5, 0.9, False))
    current = (goals == 10).mean()
    later = (goals > 10).mean()
    assert abs(current - (0.2 + 0.3 * 11 / 1000)) < 0.01  # a random goal hits row 10 rarely
    # Later rows: the trajectory share (0.5) plus random goals that land after row 10.
    assert abs(later - (0.5 + 0.3 * 989 / 1000)) < 0.01
    only_traj = np.asarray(
        gs.goal_rows(jax.random.PRNGKey(1), rows, ends, 1000, 0.0, 1.0, 0.9, False)
    )
    assert (only_traj > 10).all()
    only_cur = np.asarray(
        gs.goal_rows(jax.random.PRNGKey(1), rows, ends, 1000, 1.0, 0.0, 0.9, True)
    )
    assert (only_cur == 10).all()


def test_midpoints_are_uniform_in_i_to_j_minus_one():
    rows, goals = jnp.full((30_000,), 3), jnp.full((30_000,), 7)
    k = np.asarray(gs.midpoint(jax.random.PRNGKey(0), rows, goals))
    assert set(k.tolist()) == {3, 4, 5, 6}  # k = i is possible, k = j is not
    np.testing.assert_allclose(np.bincount(k)[3:] / k.size, [0.25] * 4, atol=0.01)
    assert set(np.asarray(gs.midpoint(jax.random.PRNGKey(1), jnp.array([5]), jnp.array([6])))) == {
        5
    }


@pytest.mark.parametrize("jit", JIT)
def test_transitive_target_by_hand(jit):
    gamma = 0.9
    first = jnp.array([[0.0, 2.0, 0.0], [1.0, -1.0, 3.0]])  # logits [members, batch]
    second = jnp.array([[4.0, 0.0, -2.0], [0.0, 0.0, 0.0]])
    k_i = jnp.array([0.0, 5.0, 1.0])  # k - i
    j_k = jnp.array([1.0, 3.0, 4.0])  # j - k
    got = _maybe_jit(trl.transitive_target, jit)(first, second, k_i, j_k, gamma)
    s = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    want = np.array([
        [1.0 * 0.9, s(2.0) * s(0.0), 0.9 * s(-2.0)],  # base case, both bootstrapped, F1 base
        [1.0 * 0.9, s(-1.0) * s(0.0), 0.9 * s(0.0)],
    ])  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_expectile_and_distance_weights_by_hand():
    target = jnp.array([0.5, 0.9, 0.81, 1.0])
    q = jnp.array([0.6, 0.9, 0.5, 0.2])
    np.testing.assert_allclose(trl.expectile_weight(target, q, 0.7), [0.3, 0.7, 0.7, 0.7])
    # d = log y / log 0.9: 0.9 -> 1, 0.81 -> 2, 1 -> 0; w = (1 / (1 + d))^lambda
    w = trl.distance_weight(jnp.array([0.9, 0.81, 1.0]), 0.9, 2.0)
    np.testing.assert_allclose(w, [0.25, 1 / 9, 1.0], rtol=1e-5)
    np.testing.assert_allclose(trl.distance_weight(jnp.array([0.3]), 0.9, 0.0), [1.0])


def test_bce_with_logits_by_hand():
    logits, target = jnp.array([0.0, 2.0, -1.0]), jnp.array([0.5, 1.0, 0.25])
    s = 1.0 / (1.0 + np.exp(-np.array([0.0, 2.0, -1.0])))
    want = -(np.array([0.5, 1.0, 0.25]) * np.log(s) + np.array([0.5, 0.0, 0.75]) * np.log(1 - s))
    np.testing.assert_allclose(gc.bce_with_logits(logits, target), want, rtol=1e-6)
    g = jax.grad(lambda f: gc.bce_with_logits(f, target).sum())(logits)
    np.testing.assert_allclose(g, s - np.array([0.5, 1.0, 0.25]), rtol=1e-5)  # sigma(f) - y


@pytest.mark.parametrize("jit", JIT)
def test_interval_union_by_hand(jit):
    union = _maybe_jit(interval_union_length, jit)
    x = jnp.array([[0.0, 1.0, 5.0], [0.0, 0.0, 0.0], [3.0, 1.0, 2.0], [2.0, 2.0, 0.0]])
    y = jnp.array([[2.0, 3.0, 6.0], [1.0, 1.0, 1.0], [1.0, 0.0, 4.0], [2.0, 1.0, -1.0]])
    # [0,2] u [1,3] u [5,6] = 4; three copies of [0,1] = 1; [2,4] only (others empty) = 2; none.
    np.testing.assert_allclose(union(x, y), [4.0, 1.0, 2.0, 0.0])
    # IQE: components of 3, alpha mixes mean and max of the component lengths.
    np.testing.assert_allclose(iqe(x.reshape(-1), y.reshape(-1), 3, 0.25),
                               0.25 * 7 / 4 + 0.75 * 4, rtol=1e-6)  # fmt: skip


def test_unit_gaussian_log_prob_and_policy_losses_by_hand():
    mean, action = jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]])
    np.testing.assert_allclose(unit_gaussian_log_prob(mean, action), [-0.5 - np.log(2 * np.pi)])
    q, log_prob = jnp.array([1.0, -3.0]), jnp.array([-1.0, -2.0])
    loss, _ = gc.ddpg_bc_loss(q, log_prob, 0.5)  # -mean(q)/mean|q| - alpha mean(log pi)
    np.testing.assert_allclose(loss, 1.0 / 2.0 + 0.5 * 1.5, rtol=1e-6)
    loss, _ = gc.awr_loss(jnp.array([0.0, 10.0]), log_prob, 1.0)  # weights 1 and 100 (cap)
    np.testing.assert_allclose(loss, -(1.0 * -1.0 + 100.0 * -2.0) / 2, rtol=1e-6)


def test_expectile_loss_and_distance_from_value_by_hand():
    diff, sign = jnp.array([2.0, -2.0]), jnp.array([1.0, -1.0])
    np.testing.assert_allclose(gc.expectile_loss(diff, sign, 0.9), [3.6, 0.4], rtol=1e-6)
    gamma = 0.99
    for d in (0.0, 1.0, 37.0):
        v = -(1 - gamma**d) / (1 - gamma)
        np.testing.assert_allclose(gc.distance_from_value(jnp.float32(v), gamma), d, atol=1e-2)


def test_average_ranks_and_spearman_match_scipy():
    x = jnp.array([3.0, 1.0, 3.0, 2.0, 5.0])
    np.testing.assert_allclose(va.average_ranks(x), [3.5, 1.0, 3.5, 2.0, 5.0])
    rng = np.random.default_rng(0)
    a = rng.integers(0, 20, 300).astype(np.float32)  # many ties, like integer distances
    b = (a + rng.normal(0, 4, 300)).astype(np.float32)
    want = scipy.stats.spearmanr(a, b).statistic
    np.testing.assert_allclose(
        jax.jit(va.spearman)(jnp.asarray(a), jnp.asarray(b)), want, rtol=1e-5
    )


def _pairs(exact, offsets):
    n = len(offsets)
    zeros = jnp.zeros((2 * n, 2))
    return va.HeldOut(states=zeros, goals=zeros, actions=zeros, exact=jnp.asarray(exact),
                      offsets=jnp.asarray(offsets))  # fmt: skip


def test_value_scores_bin_the_errors_by_exact_distance():
    # Uniform pairs first (3), then trajectory pairs (3) with their data offsets j - i.
    exact = [5.0, 30.0, 500.0, 5.0, 12.0, 70.0]
    estimate = jnp.array([6.0, 20.0, 400.0, 5.0, 18.0, 90.0])
    pairs = _pairs(exact, [8.0, 20.0, 100.0])
    out = va.scores(estimate, pairs, calibrated=True)
    np.testing.assert_allclose(out["value/mae"], (1 + 10 + 100) / 3)  # uniform pairs only
    np.testing.assert_allclose(out["value/mae@0-10"], (1 + 0) / 2)  # both kinds binned
    np.testing.assert_allclose(out["value/median@0-10"], 5.5)
    np.testing.assert_allclose(out["value/mae@10-20"], 6.0)
    np.testing.assert_allclose(out["value/median@320-640"], 400.0)
    assert np.isnan(out["value/mae@160-320"]) and np.isnan(out["value/median@160-320"])
    np.testing.assert_allclose(out["value/traj_mae_opt"], (0 + 6 + 20) / 3)
    np.testing.assert_allclose(out["value/traj_mae_offset"], (3 + 2 + 10) / 3)
    np.testing.assert_allclose(out["value/traj_mean"], (5 + 18 + 90) / 3)
    figures = va.pair_figures(pairs)
    np.testing.assert_allclose(figures["value/exact_median@0-10"], 5.0)
    np.testing.assert_allclose(figures["value/traj_mean_opt"], 29.0)
    np.testing.assert_allclose(figures["value/traj_mean_offset"], 128 / 3)
    assert set(va.scores(estimate, pairs, calibrated=False)) == {"value/spearman"}
    assert "value_actor/mae" in va.scores(estimate, pairs, True, va.prefix_of(1, "actor"))
    labels = {k: r.label for k, r in va.rules(["data", "actor"], calibrated=True).items()}
    assert labels["value/mae"] == "value error (steps)"  # the primary read-out: no name
    assert labels["value_actor/mae"] == "value error (steps) (actor)"


def test_held_out_trajectory_pairs_stay_inside_their_episode():
    ends = jnp.asarray(np.repeat(np.arange(9, 400, 10), 10))  # 40 episodes of 10 rows
    s, g, (i, j) = va.pair_rows(ends, 4096)
    assert int(s.max()) < 400 and int(g.max()) < 400
    assert bool(jnp.all(j > i)) and bool(jnp.all(j <= ends[i]))
    offsets = np.asarray(j - i)
    assert offsets.min() == 1 and offsets.max() == 9  # every scale of a 10-row episode
