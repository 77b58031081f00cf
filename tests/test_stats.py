"""IQM against hand-computed values and scipy's trim_mean; the stratified bootstrap's interval,
determinism, coverage width and per-task run counts; input validation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import trim_mean

from rlx.report.stats import iqm, mean_std, resample_indices, stratified_bootstrap_ci


def test_iqm_hand_computed():
    assert iqm(np.arange(1, 9)) == 4.5  # [1..8]: cut 2 each end, mean of [3, 4, 5, 6]
    assert iqm([1, 2, 3, 4, 5, 6, 7, 1000]) == 4.5  # the outlier is trimmed away
    assert iqm([-1e6, 2, 3, 4, 5, 6, 7, 8]) == 4.5
    # n = 5: floor(5 / 4) = 1 value cut from each end, the middle 3 averaged.
    assert iqm([10, 1, 3, 2, 100]) == pytest.approx((2 + 3 + 10) / 3)
    assert iqm([4.0, 7.0]) == 5.5  # n < 4 cuts nothing: the plain mean
    assert isinstance(iqm(np.arange(8)), float)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 33])
def test_iqm_matches_scipy_trim_mean(n):
    x = np.random.default_rng(n).normal(size=n)
    assert iqm(x) == pytest.approx(trim_mean(x, 0.25))


def test_iqm_axis():
    x = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, -100]], dtype=float)
    np.testing.assert_allclose(iqm(x, axis=1), [4.5, 4.5])
    np.testing.assert_allclose(iqm(x.T, axis=0), [4.5, 4.5])
    np.testing.assert_allclose(iqm(x.T, axis=-1), x.mean(axis=0))  # 2 values: nothing cut
    assert iqm(x) == pytest.approx(trim_mean(x, 0.25, axis=None))
    y = np.random.default_rng(0).normal(size=(3, 9, 4))
    np.testing.assert_allclose(iqm(y, axis=1), trim_mean(y, 0.25, axis=1))


def test_mean_std():
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)  # population std
    with pytest.raises(ValueError, match="empty"):
        mean_std([])


def test_bootstrap_constant_has_zero_width():
    assert stratified_bootstrap_ci(np.full(10, 3.0), reps=200) == (3.0, 3.0, 3.0)
    assert stratified_bootstrap_ci({"a": np.full(7, 2.0), "b": np.full(3, 2.0)}) == (2.0,) * 3


def test_bootstrap_interval_contains_point_and_is_deterministic():
    x = np.random.default_rng(1).normal(size=30)
    point, lo, hi = stratified_bootstrap_ci(x, reps=1000, seed=3)
    assert point == pytest.approx(iqm(x))
    assert x.min() <= lo <= point <= hi <= x.max()
    assert lo < hi
    assert stratified_bootstrap_ci(x, reps=1000, seed=3) == (point, lo, hi)
    assert stratified_bootstrap_ci(x, reps=1000, seed=4) != (point, lo, hi)


def test_bootstrap_one_run_per_task_collapses():
    scores = {"a": np.array([1.0]), "b": np.array([5.0]), "c": np.array([2.0])}
    assert stratified_bootstrap_ci(scores, statistic=np.mean) == (8 / 3, 8 / 3, 8 / 3)


def test_bootstrap_width_of_mean_matches_normal_theory():
    x = np.random.default_rng(0).normal(size=100)
    _, lo, hi = stratified_bootstrap_ci(x, statistic=np.mean, reps=4000)
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(100), rel=0.25)


def test_bootstrap_is_stratified():
    # Task "small" lives in [0, 1), task "big" in [100, 101): the count of values below 50 in a
    # pooled replicate is the number of runs resampled from "small".
    rng = np.random.default_rng(0)
    scores = {"small": rng.uniform(size=3), "big": 100 + rng.uniform(size=40)}
    seen = []

    def small_count(x, axis):
        seen.append(x.shape)
        return (x < 50).sum(axis=axis).astype(float)

    point, lo, hi = stratified_bootstrap_ci(scores, statistic=small_count, reps=300)
    assert (point, lo, hi) == (3.0, 3.0, 3.0)  # every replicate keeps 3 "small" runs
    assert seen[-1] == (300, 43)

    idx = resample_indices(3, 500, np.random.default_rng(0))
    assert idx.shape == (500, 3) and idx.min() == 0 and idx.max() == 2
    assert len(np.unique(idx, axis=0)) > 1  # with replacement: rows differ


def test_bootstrap_pools_tasks():
    scores = {"a": np.arange(1.0, 5.0), "b": np.arange(5.0, 9.0)}
    assert stratified_bootstrap_ci(scores)[0] == 4.5  # IQM of [1..8], not mean of task IQMs


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scores": np.array([])}, "empty"),
        ({"scores": {}}, "no tasks"),
        ({"scores": {"walker": np.array([])}}, "'walker' is empty"),
        ({"scores": {"hopper": np.array([1.0, np.nan])}}, "'hopper' has 1 NaN"),
        ({"scores": np.ones((2, 3))}, r"1-D .* shape \(2, 3\)"),
        ({"scores": np.ones(4), "confidence": 1.0}, "confidence .* between 0 and 1, got 1.0"),
        ({"scores": np.ones(4), "confidence": 0}, "got 0"),
        ({"scores": np.ones(4), "reps": 0}, "reps must be an integer >= 1, got 0"),
        ({"scores": np.ones(4), "reps": 2.5}, "got 2.5"),
    ],
)
def test_bootstrap_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stratified_bootstrap_ci(**kwargs)


def test_iqm_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        iqm([])
    with pytest.raises(ValueError, match="empty"):
        iqm(np.ones((3, 0)), axis=1)
    with pytest.raises(ValueError, match="axis 2"):
        iqm(np.ones((3, 4)), axis=2)


def _scipy_percentile_ci(tasks: list[np.ndarray], confidence: float, reps: int):
    """scipy's percentile bootstrap of the pooled IQM: with several samples and paired=False,
    scipy resamples each sample independently (keeping its size), i.e. a stratified bootstrap."""
    from scipy.stats import bootstrap

    def pooled_iqm(*samples, axis=-1):
        return trim_mean(np.concatenate(samples, axis=axis), 0.25, axis=axis)

    res = bootstrap(
        tasks, pooled_iqm, n_resamples=reps, method="percentile", confidence_level=confidence,
        vectorized=True, paired=False, rng=np.random.default_rng(123), batch=5000,
    )  # fmt: skip
    sd = float(np.std(res.bootstrap_distribution))
    return float(res.confidence_interval.low), float(res.confidence_interval.high), sd


@pytest.mark.parametrize("n_tasks", [1, 2])
def test_bootstrap_ci_matches_scipy_percentile_bootstrap(n_tasks):
    # Skewed data (lognormal), so the percentile interval is asymmetric around the point: a
    # normal-approximation or mis-labelled interval shows up at one end or the other.
    rng = np.random.default_rng(7)
    tasks = [rng.lognormal(0.0, 0.8, size=25), 5.0 + rng.lognormal(0.0, 0.5, size=14)][:n_tasks]
    scores = {f"t{i}": x for i, x in enumerate(tasks)}
    reps = 20_000
    point, lo, hi = stratified_bootstrap_ci(scores, reps=reps, seed=0)
    assert point == pytest.approx(trim_mean(np.concatenate(tasks), 0.25))

    s_lo, s_hi, sd = _scipy_percentile_ci(tasks, 0.95, reps)
    # Monte-Carlo error of a 2.5% quantile from 20,000 replicates is ~0.02 bootstrap standard
    # deviations per estimate; a 90% interval's ends sit ~0.31 sd inside the 95% ones
    # (1.96 - 1.645 for a normal-shaped bootstrap distribution). 0.1 sd separates the two.
    tol = 0.1 * sd
    assert abs(lo - s_lo) < tol and abs(hi - s_hi) < tol, (lo, hi, s_lo, s_hi, sd)

    # The tolerance really catches a 90% interval labelled 95%.
    n_lo, n_hi, _ = _scipy_percentile_ci(tasks, 0.90, reps)
    assert abs(n_lo - s_lo) > 2 * tol and abs(n_hi - s_hi) > 2 * tol, (n_lo, n_hi, s_lo, s_hi)
    _, lo90, hi90 = stratified_bootstrap_ci(scores, reps=reps, seed=0, confidence=0.90)
    assert abs(lo90 - n_lo) < tol and abs(hi90 - n_hi) < tol
    assert abs(lo90 - s_lo) > tol and abs(hi90 - s_hi) > tol
