"""PNG plots of benchmark results: learning curves and performance profiles.

Figures are drawn with matplotlib's Agg canvas directly (`Figure` + `FigureCanvasAgg`, never
pyplot), so nothing needs a display and the process-wide backend is left alone. Aggregates use
`rlx.report.stats`: IQM over runs with 95% stratified-bootstrap bands (Agarwal et al., 2021).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from rlx.errors import RlxError
from rlx.report.stats import iqm, resample_indices, stratified_bootstrap_ci

DPI = 120


def _colors(labels: list[str]) -> dict[str, str]:
    """One colour per label (the ten tab10 colours, cycled), the same across every subplot."""
    palette = [
        f"tab:{c}" for c in "blue orange green red purple brown pink gray olive cyan".split()
    ]
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _save(fig: Figure, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, dpi=DPI, format="png")
    return out


def learning_curves(
    curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    out: Path,
    title: str = "",
    ylabel: str = "eval return",
    reps: int = 500,
    mark: tuple[float, str] | None = None,
    xlabel: str = "env steps",
) -> Path:
    """Writes the PNG of `learning_curves_figure` (same arguments) to `out`; returns `out`."""
    return _save(learning_curves_figure(curves, title, ylabel, reps, mark, xlabel), out)


def learning_curves_figure(
    curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    title: str = "",
    ylabel: str = "eval return",
    reps: int = 500,
    mark: tuple[float, str] | None = None,
    xlabel: str = "env steps",
) -> Figure:
    """IQM learning curves with 95% bootstrap bands, one subplot per env, as a `Figure`.

    ``curves[env][label] = (env_steps[T], scores[runs, T])``. At each step the line is the IQM
    over runs and the band the 95% percentile bootstrap interval of it (`reps` resamples of the
    runs, single task). NaN scores (failed runs) are dropped step by step; a step with no
    finite score is left as a gap. Subplots sit in one row with a shared legend below them.
    ``mark = (fraction, label)`` draws a dashed vertical line at that fraction of each
    subplot's last env step (e.g. where a schedule ends). Each subplot's first lines are the
    labels' IQM curves, in label order.
    """
    if not curves:
        raise RlxError("learning_curves got no envs; need curves[env][label] = (steps, scores).")
    labels = list(dict.fromkeys(label for per_env in curves.values() for label in per_env))
    colors = _colors(labels)

    fig = Figure(figsize=(4.2 * len(curves), 3.6), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (env, per_env) in zip(axes, curves.items(), strict=True):
        for label, (steps, scores) in per_env.items():
            steps = np.asarray(steps, dtype=float)
            scores = np.atleast_2d(np.asarray(scores, dtype=float))
            if steps.ndim != 1 or scores.shape[1] != steps.size:
                raise RlxError(
                    f"curves[{env!r}][{label!r}]: need steps[T] and scores[runs, T], got shapes "
                    f"{steps.shape} and {scores.shape}."
                )
            mid, lo, hi = np.full((3, steps.size), np.nan)
            for t in range(steps.size):
                col = scores[:, t][~np.isnan(scores[:, t])]
                if col.size:
                    mid[t], lo[t], hi[t] = stratified_bootstrap_ci(col, iqm, reps=reps)
            ax.plot(steps, mid, color=colors[label], label=label, lw=1.6)
            ax.fill_between(steps, lo, hi, color=colors[label], alpha=0.2, lw=0)
        if mark is not None:
            last = max(float(np.max(steps)) for steps, _ in per_env.values())
            ax.axvline(mark[0] * last, color="black", ls="--", lw=1.0, alpha=0.7)
            ax.annotate(mark[1], (mark[0] * last, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(-3, -3), textcoords="offset points", ha="right", va="top",
                        fontsize="small")  # fmt: skip
        ax.set_title(env)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_formatter(EngFormatter())
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    handles = [axes[0].plot([], [], color=colors[label], lw=1.6)[0] for label in labels]
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5))
    if title:
        fig.suptitle(title)
    return fig


def performance_profile(
    scores: Mapping[str, Mapping[str, np.ndarray]],
    out: Path,
    normalize: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
    reps: int = 500,
) -> Path:
    """Writes the PNG of `performance_profile_figure` (same arguments) to `out`; returns `out`."""
    return _save(performance_profile_figure(scores, normalize, title, reps), out)


def performance_profile_figure(
    scores: Mapping[str, Mapping[str, np.ndarray]],
    normalize: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
    reps: int = 500,
) -> Figure:
    """Performance profiles (score distributions) of final scores, as a `Figure`.

    ``scores[label][env]`` holds per-run final scores. Each env's scores are normalised to
    ``(x - min) / (max - min)`` with ``normalize[env] = (min, max)``, by default the min and max
    over all labels' runs on that env (an env where they coincide maps to 0). For each label the
    curve is

        F(tau) = 1/M * sum_env  (fraction of that env's runs with normalised score > tau)

    on a grid of ``tau`` in [0, 1], drawn as a step function, i.e. the fraction of runs above
    ``tau`` averaged over the M envs (equal to the pooled fraction when every env has the same
    number of runs, and not tilted towards envs with more surviving runs otherwise). The band is
    the 95% stratified-bootstrap interval (`reps` resamples of runs within each env; ``reps=0``
    draws no band). NaN scores (failed runs) are dropped. The axes' lines are the labels'
    ``F`` on the ``tau`` grid, in label order.
    """
    if not scores:
        raise RlxError("performance_profile got no labels; need scores[label][env] = runs.")
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 0:
        raise RlxError(f"reps must be an integer >= 0 (0: no band), got {reps!r}.")
    envs = list(dict.fromkeys(env for per_label in scores.values() for env in per_label))
    clean: dict[str, dict[str, np.ndarray]] = {}
    for label, per_label in scores.items():
        clean[label] = {}
        for env in envs:
            if env not in per_label:
                raise RlxError(f"performance_profile: label {label!r} has no scores on {env!r}.")
            a = np.asarray(per_label[env], dtype=float).ravel()
            a = a[~np.isnan(a)]
            if a.size == 0:
                raise RlxError(
                    f"performance_profile: label {label!r} has no finite runs on {env!r}."
                )
            clean[label][env] = a

    bounds = {}
    for env in envs:
        if normalize is not None and env in normalize:
            lo, hi = map(float, normalize[env])
            if not hi > lo:
                raise RlxError(f"normalize[{env!r}] = {(lo, hi)}: need min < max.")
        else:
            pooled = np.concatenate([clean[label][env] for label in scores])
            lo, hi = float(pooled.min()), float(pooled.max())
        bounds[env] = (lo, hi - lo if hi > lo else 1.0)

    taus = np.linspace(0.0, 1.0, 101)
    colors = _colors(list(scores))
    fig = Figure(figsize=(5.2, 3.8), layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    for label, per_env in clean.items():
        frac, band = np.zeros_like(taus), np.zeros((reps, taus.size))
        for env, a in per_env.items():
            lo, span = bounds[env]
            x = (a - lo) / span
            frac += (x[:, None] > taus).mean(axis=0) / len(envs)
            if reps > 0:
                resampled = x[resample_indices(x.size, reps, rng)]  # (reps, runs)
                band += (resampled[:, :, None] > taus).mean(axis=1) / len(envs)
        ax.plot(taus, frac, drawstyle="steps-post", color=colors[label], label=label, lw=1.6)
        if reps > 0:
            b_lo, b_hi = np.percentile(band, [2.5, 97.5], axis=0)
            ax.fill_between(taus, b_lo, b_hi, step="post", color=colors[label], alpha=0.2, lw=0)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(r"normalised score $\tau$")
    ax.set_ylabel(r"fraction of runs with score > $\tau$")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    if title:
        ax.set_title(title)
    return fig
