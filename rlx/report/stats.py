"""Aggregate statistics for benchmark tables: IQM and stratified-bootstrap confidence intervals.

Following Agarwal et al. (2021), "Deep RL at the Edge of the Statistical Precipice" (the rliable
library), results are summarised by the *interquartile mean* of the per-run scores, with a
percentile confidence interval from a *stratified* bootstrap:

* ``iqm(x)``: the mean of the middle 50% of the values, i.e. ``scipy.stats.trim_mean(x, 0.25)``.
  With ``n`` values and ``k = floor(n / 4)``, sort them and average ``x[k : n - k]``.
* ``stratified_bootstrap_ci(scores)``: for ``b = 1..reps``, resample the runs of every task with
  replacement (task ``m`` keeps its run count ``N_m``), pool the resampled runs of all tasks and
  compute the statistic ``s_b``; the interval is the ``(1 - c) / 2`` and ``(1 + c) / 2``
  percentiles of ``{s_b}`` for confidence ``c``.

Only numpy is needed. Invalid inputs raise `RlxError` (a `ValueError`) naming the bad value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from rlx.errors import RlxError

Statistic = Callable[..., "float | np.ndarray"]


def iqm(scores: np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50% of `scores` (along `axis`; all if None).

    Same definition as rliable, ``scipy.stats.trim_mean(scores, 0.25, axis=axis)``: with ``n``
    values, ``k = floor(0.25 * n)`` values are cut from *each* end of the sorted values and the
    remaining ``n - 2k`` are averaged::

        IQM(x) = 1 / (n - 2k) * sum_{i=k}^{n-k-1} x_(i),   x_(0) <= ... <= x_(n-1)

    So when ``n`` is not divisible by 4 slightly more than half the values are kept: n = 5, 6, 7
    cut one value from each end (keeping 3, 4, 5 values); n < 4 cuts nothing (the plain mean).

    Returns a float when `axis` is None (or the input is 1-D), else an array with `axis` removed.
    """
    x = np.asarray(scores, dtype=float)
    if axis is None:
        x, axis = x.ravel(), 0
    if x.ndim == 0:
        raise RlxError("iqm needs an array of scores, got a scalar.")
    axis = int(axis)
    if not -x.ndim <= axis < x.ndim:
        raise RlxError(f"iqm axis {axis} is out of range for an array of {x.ndim} dimensions.")
    n = x.shape[axis]
    if n == 0:
        raise RlxError(f"iqm of an empty array (shape {x.shape}, axis {axis}); need >= 1 score.")
    k = n // 4
    if k:
        # Partial sort: everything below index k and at/after n - k lands outside the kept slice.
        x = np.partition(x, (k, n - k - 1), axis=axis)
    kept = np.take(x, np.arange(k, n - k), axis=axis)
    out = kept.mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def mean_std(x: np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation (``ddof=0``) of all values of `x`."""
    a = np.asarray(x, dtype=float).ravel()
    if a.size == 0:
        raise RlxError("mean_std of an empty array; need >= 1 value.")
    return float(a.mean()), float(a.std(ddof=0))


def resample_indices(n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap indices for one task: a ``(reps, n)`` int array, each row ``n`` draws from
    ``range(n)`` with replacement (so every replicate keeps the task's run count)."""
    return rng.integers(0, n, size=(reps, n))


def _as_tasks(scores: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """Validates `scores` into ``{task: 1-D float array}``; a bare array is the single task ''."""
    if not isinstance(scores, Mapping):
        scores = {"": scores}
    if not scores:
        raise RlxError("stratified_bootstrap_ci got no tasks; need a dict with >= 1 task.")
    tasks = {}
    for name, s in scores.items():
        a = np.asarray(s, dtype=float)
        where = f"task {name!r}" if name else "scores"
        if a.ndim != 1:
            raise RlxError(f"{where} must be a 1-D array of per-run scores, got shape {a.shape}.")
        if a.size == 0:
            raise RlxError(f"{where} is empty; need >= 1 run per task.")
        if np.isnan(a).any():
            raise RlxError(
                f"{where} has {int(np.isnan(a).sum())} NaN score(s); drop failed runs first."
            )
        tasks[name] = a
    return tasks


def stratified_bootstrap_ci(
    scores: Mapping[str, np.ndarray] | np.ndarray,
    statistic: Statistic = iqm,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Point estimate and stratified-bootstrap percentile confidence interval of `statistic`.

    `scores` maps task name -> 1-D array of per-run scores (a bare 1-D array is one task). Let
    task ``m`` have runs ``x_m[0..N_m-1]`` and ``pool(...)`` concatenate tasks in dict order.

    * point estimate ``s = statistic(pool(x_1, ..., x_M))``: for `iqm` or `np.mean`, the IQM or
      mean over *all tasks' runs together* (no per-task averaging first).
    * replicate ``b``: ``s_b = statistic(pool(x_1[I_1b], ..., x_M[I_Mb]))`` where ``I_mb`` are
      ``N_m`` indices drawn uniformly with replacement from ``range(N_m)`` (resampling runs
      *within* each task, so every replicate keeps each task's run count).
    * interval: ``lo, hi`` = the ``100 (1 - c) / 2`` and ``100 (1 + c) / 2`` percentiles of
      ``s_1..s_reps`` (linear interpolation), with ``c = confidence``.

    All replicates are drawn and evaluated at once: `statistic` is called as
    ``statistic(x, axis=1)`` on a ``(reps, sum N_m)`` array and must return ``reps`` values
    (`iqm`, `np.mean`, `np.median` all qualify). Deterministic for a given `seed`. With one run
    per task there is nothing to resample and the interval collapses to the point.

    Returns ``(point, lo, hi)`` as floats. NaN scores raise `RlxError` (a `ValueError`) naming the
    task: callers drop failed runs first.
    """
    if isinstance(reps, bool) or not isinstance(reps, int | np.integer) or reps < 1:
        raise RlxError(f"reps must be an integer >= 1, got {reps!r}.")
    if not 0.0 < confidence < 1.0:
        raise RlxError(f"confidence must be strictly between 0 and 1, got {confidence!r}.")
    tasks = _as_tasks(scores)

    pooled = np.concatenate(list(tasks.values()))
    # Evaluate the point exactly as the replicates are (a row of a 2-D array, axis=1) so that a
    # bootstrap with nothing to resample reproduces it bit for bit.
    point = float(np.asarray(statistic(pooled[None, :], axis=1)).reshape(-1)[0])
    if all(a.size == 1 for a in tasks.values()):
        return point, point, point

    rng = np.random.default_rng(seed)
    samples = np.concatenate(
        [a[resample_indices(a.size, int(reps), rng)] for a in tasks.values()], axis=1
    )
    stats = np.asarray(statistic(samples, axis=1), dtype=float).reshape(-1)
    if stats.shape != (reps,):
        raise RlxError(
            f"statistic must reduce a (reps, runs) array along axis=1 to {reps} values, "
            f"got shape {stats.shape}."
        )
    alpha = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(stats, [alpha, 100.0 - alpha])
    return point, float(lo), float(hi)
