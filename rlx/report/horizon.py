"""`rlx horizon DIR`: the value-horizon study of a sweep's offline goal-conditioned cells.

Two summaries of how far a learned value is right, per run, read-out and evaluation point, from
the run's ``<readout>/median@<lo>-<hi>`` (median implied distance per exact-distance bin) and
``value/exact_median@<lo>-<hi>`` curves (`rlx.algos.offline_gc.value_accuracy`):

- the *resolved horizon* (`resolved_horizon`): the upper edge of the farthest bin such that it
  and every nearer populated bin have a median implied distance within 25% (or 2 steps) of the
  median exact distance: how far the value is *calibrated* to the optimal distance;
- the *propagation horizon* (`propagation_horizon`): the upper edge of the farthest bin up to
  which, bin after bin, the median implied distance rises by at least half as much as the
  median exact distance: how far value has *propagated*, whatever its scale (an objective that
  estimates the behaviour's longer distances, e.g. an expectile below 1 on noisy data, is
  biased, not short-sighted).

A one-step TD learner with a Polyak target of rate tau can carry value about ``N tau`` steps in
``N`` gradient steps: its estimate stops rising beyond that. A divide-and-conquer update (TRL)
should need about ``log H`` rounds for a horizon ``H``. The study reads both from the curves.

Writes into DIR: ``horizon.csv`` (one row per run, read-out and evaluation point),
``horizon.md`` (the mean of each horizon over seeds per method, maze, grid point and read-out
at log-spaced gradient steps; the gradient steps each first reaches 40, 80 and 160 steps; the
in-episode bias read-outs and rank correlations at the last point) and ``horizon.png`` (both
horizons against gradient steps, log-log, one panel per maze, with ``N tau`` lines).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rlx import files
from rlx.errors import RlxError

MEDIAN = re.compile(r"^(value[^/]*)/median@(\d+)-(\d+)$")
RANK = re.compile(r"^value[^/]*/spearman$")
TARGETS = (40, 80, 160)
"""Horizons whose first gradient step is tabulated."""
FLOOR = 5.0
"""Where a horizon of 0 (nothing resolved) is drawn on the log axis."""
TOLERANCE = 0.25
"""A bin is resolved when its median estimate is within this fraction of its median distance..."""
SLACK = 2.0
"""... or within this many env steps (the nearest bin's median distance is about 2 steps, where
25% would ask for a quarter of a step)."""


def resolved_horizon(
    edges: list[tuple[int, int]], medians: list[float], exact_medians: list[float],
    tolerance: float = TOLERANCE, slack: float = SLACK,
) -> float:  # fmt: skip
    """The upper edge of the farthest bin ``(lo, hi)`` of `edges` (sorted) such that it and
    every nearer populated bin have ``|median d_hat - median d| <= max(tolerance * median d,
    slack)``; 0 when the nearest populated bin fails. Empty bins (NaN median d) are skipped; a
    populated bin without an estimate fails."""
    if not len(edges) == len(medians) == len(exact_medians):
        raise ValueError(f"{len(edges)} bins, {len(medians)} and {len(exact_medians)} medians")
    horizon = 0.0
    for (_, hi), est, ref in zip(edges, medians, exact_medians, strict=True):
        if not np.isfinite(ref):
            continue
        if not np.isfinite(est) or abs(est - ref) > max(tolerance * ref, slack):
            break
        horizon = float(hi)
    return horizon


RISE = 0.5
"""A bin has propagated when its median estimate rose by at least this share of the exact
median's rise since the previous populated bin."""


def propagation_horizon(
    edges: list[tuple[int, int]], medians: list[float], exact_medians: list[float],
    rise: float = RISE,
) -> float:  # fmt: skip
    """The upper edge of the farthest bin ``(lo, hi)`` of `edges` (sorted) up to which every
    populated bin after the first has ``est_b - est_prev >= rise * (ref_b - ref_prev)`` (median
    estimates `medians`, median exact distances `exact_medians`, ``prev`` the previous populated
    bin); the first populated bin counts when it has an estimate. Empty bins are skipped."""
    if not len(edges) == len(medians) == len(exact_medians):
        raise ValueError(f"{len(edges)} bins, {len(medians)} and {len(exact_medians)} medians")
    horizon, prev = 0.0, None
    for (_, hi), est, ref in zip(edges, medians, exact_medians, strict=True):
        if not np.isfinite(ref):
            continue
        if not np.isfinite(est) or (prev is not None and est - prev[0] < rise * (ref - prev[1])):
            break
        horizon, prev = float(hi), (est, ref)
    return horizon


def _records(directory: Path) -> list[dict[str, Any]]:
    paths = sorted((directory / "cells").glob("*/record.json"))
    if not paths:
        raise RlxError(f"{str(directory)!r} has no cells/*/record.json (not a sweep directory).")
    return [json.loads(p.read_text()) for p in paths]


def _setting(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(point.items())) or "default"


def _readouts(curve: dict[str, list]) -> dict[str, list[tuple[int, int]]]:
    """Read-out prefix -> its bins (lo, hi), sorted."""
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for name in curve:
        m = MEDIAN.match(name)
        if m:
            out[m.group(1)].append((int(m.group(2)), int(m.group(3))))
    return {k: sorted(v) for k, v in out.items()}


def _at(curve: dict[str, list], name: str, t: int) -> float:
    """Curve `name` at evaluation `t` (NaN when absent or None)."""
    values = curve.get(name)
    return float("nan") if values is None or values[t] is None else float(values[t])


def _point(curve: dict[str, list], prefix: str, bins: list[tuple[int, int]], t: int) -> dict:
    """A read-out's resolved horizon, rank correlation and in-episode figures at evaluation t."""
    est = [_at(curve, f"{prefix}/median@{lo}-{hi}", t) for lo, hi in bins]
    ref = [_at(curve, f"value/exact_median@{lo}-{hi}", t) for lo, hi in bins]
    return {
        "horizon": resolved_horizon(bins, est, ref) if bins else float("nan"),
        "propagation": propagation_horizon(bins, est, ref) if bins else float("nan"),
        "spearman": _at(curve, f"{prefix}/spearman", t),
        **{k: _at(curve, f"{prefix}/{k}", t) for k in ("traj_mean", "traj_mae_opt",
                                                        "traj_mae_offset")},
        **{k: _at(curve, f"value/{k}", t) for k in ("traj_mean_opt", "traj_mean_offset")},
    }  # fmt: skip


def run_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per run, read-out and evaluation point after the start: algorithm, env,
    setting, seed, read-out, gradient steps, resolved horizon, rank correlation, and the
    in-episode means (estimate, optimal, data) and errors."""
    rows = []
    for run in record["runs"]:
        curve, setting = run["curve"], _setting(run.get("grid_point") or {})
        ranked = {n.split("/")[0]: [] for n in curve if RANK.match(n)}
        prefixes = {**ranked, **_readouts(curve)}
        for prefix, bins in prefixes.items():
            for t, step in enumerate(curve.get("gradient_steps") or []):
                if step > 0:
                    rows.append({"algo": record["algo"], "env": record["env"], "setting": setting,
                                 "seed": run["seed"], "readout": prefix,
                                 "gradient_steps": int(step), **_point(curve, prefix, bins, t)})  # fmt: skip
    return rows


def _groups(rows: list[dict[str, Any]]) -> dict[tuple, dict[int, list[dict[str, Any]]]]:
    """(env, algo, setting, readout) -> gradient steps -> rows over seeds."""
    out: dict[tuple, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        out[(r["env"], r["algo"], r["setting"], r["readout"])][r["gradient_steps"]].append(r)
    return out


def log_points(steps: list[int]) -> list[int]:
    """The evaluation points at the first one times a power of two."""
    first = min(steps)
    return [s for s in sorted(steps) if (s / first) > 0 and math.log2(s / first).is_integer()]


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if np.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


KINDS = {
    "horizon": "Resolved horizon (env steps): the farthest distance bin up to which every "
    "populated bin's median implied distance is within 25% (or 2 steps) of its median exact "
    "distance (calibration to the optimal distance).",
    "propagation": "Propagation horizon (env steps): the farthest distance bin up to which, bin "
    "after bin, the median implied distance rises by at least half the median exact distance's "
    "rise (how far value has propagated, whatever its scale).",
}
"""The two horizons of a row, with their table captions."""
TITLES = {"horizon": "Resolved horizon", "propagation": "Propagation horizon"}
"""Their section titles."""


def _fmt_h(rows: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in rows]
    if not all(np.isfinite(values)):
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.0f}"
    return f"{np.mean(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def first_reach(by_step: dict[int, list[dict[str, Any]]], target: float, key: str) -> int | None:
    """The first gradient step whose mean `key` horizon over seeds is at least `target`."""
    for step in sorted(by_step):
        if _mean(by_step[step], key) >= target:
            return step
    return None


def _budget_lines(records: list[dict[str, Any]]) -> list[str]:
    first = records[0]
    prov, cfg = first["provenance"], first["config"]
    hw = prov["hardware"]
    versions = ", ".join(f"{k} {v}" for k, v in prov["versions"].items())
    sizes = {f"{r['algo']}: batch {r['config'].get('batch_size')}, value "
             f"{r['config'].get('value_hidden')}" for r in records}  # fmt: skip
    return [
        f"- hardware: {hw.get('cpu') or hw.get('device_kind')}, {hw.get('cpu_cores')} cores "
        f"({hw['backend']}, {hw['device_count']} device(s))",
        f"- versions: {versions}",
        f"- git {', '.join(sorted({r['provenance']['git'] for r in records}))} (each cell's "
        f"record.json names its own); first cell started {prov['date']}",
        f"- budget: {cfg['total_steps']:,} gradient steps per run, evaluated every "
        f"{cfg['total_steps'] // first['budget']['num_evals']:,}; seeds {first['seeds']}; "
        + "; ".join(sorted(sizes)),
    ]


def _horizon_table(groups: dict, points: list[int], key: str) -> list[str]:
    """The Markdown table of the `key` horizon at `points`, with steps to each of TARGETS."""
    head = ["environment", "algorithm", "setting", "read-out",
            *[f"{p:,}" for p in points], *[f"steps to {t}" for t in TARGETS]]  # fmt: skip
    lines = [KINDS[key], "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group in sorted(groups):
        by_step = groups[group]
        if not all(np.isfinite(r[key]) for rs in by_step.values() for r in rs):
            continue
        cells = [_fmt_h(by_step[p], key) if p in by_step else "" for p in points]
        reach = [first_reach(by_step, t, key) for t in TARGETS]
        cells += [f"{s:,}" if s is not None else f"> {max(by_step):,}" for s in reach]
        lines.append("| " + " | ".join([*group, *cells]) + " |")
    return [*lines, ""]


def _bias_table(groups: dict, last_step: int) -> list[str]:
    """The in-episode read-outs and rank correlation of every group at `last_step`."""
    lines = [f"## At {last_step:,} gradient steps: in-episode read-outs and rank", "",
             "In-episode pairs (a state and a later state of the same held-out episode): the "
             "mean estimate beside the mean optimal distance and the mean steps the data took; "
             "the error against each. An estimate between the two is biased towards the "
             "behaviour by its objective; its distance from its own target is fitting error. "
             "Rank correlation: Spearman's, on the uniform pairs (CRL: its only figure).", "",
             "| environment | algorithm | setting | read-out | rank corr. | mean estimate | "
             "mean optimal | mean data | error vs optimal | error vs data |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for group in sorted(groups):
        last = groups[group].get(last_step, [])
        if last:
            figs = [_mean(last, k) for k in ("spearman", "traj_mean", "traj_mean_opt",
                                             "traj_mean_offset", "traj_mae_opt",
                                             "traj_mae_offset")]  # fmt: skip
            text = [f"{figs[0]:.2f}"] + [f"{v:.1f}" if np.isfinite(v) else "n/a" for v in figs[1:]]
            lines.append("| " + " | ".join([*group, *text]) + " |")
    return lines


def render(records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """The Markdown of the study (see the module docstring)."""
    groups = _groups(rows)
    steps = sorted({r["gradient_steps"] for r in rows})
    lines = ["# Value horizon", "", *_budget_lines(records), "",
             "Each horizon is the mean over seeds (min-max). `value` is each method's primary "
             "read-out (TRL, CRL: the critic at the dataset action; GCIQL, GCIVL: V; QRL: its "
             "quasimetric), `value_actor` the critic at the actor's action. A TD learner with a "
             "Polyak target of rate tau carries value about N x tau steps in N gradient steps.",
             ""]  # fmt: skip
    for key in KINDS:
        lines += [
            f"## {TITLES[key]}",
            "",
            *_horizon_table(groups, log_points(steps), key),
        ]
    return "\n".join(lines + _bias_table(groups, steps[-1])) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Both horizons against gradient steps, log-log, a column per maze (rows: resolved,
    propagation), with N tau lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(rows)
    mazes = sorted({k[0] for k in groups})
    fig, axes = plt.subplots(len(KINDS), len(mazes), figsize=(5 * len(mazes), 8), squeeze=False)
    steps = np.array(sorted({r["gradient_steps"] for r in rows}), float)
    taus = sorted({float(m.group(1)) for k in groups
                   for m in [re.search(r"tau=([0-9.e-]+)", k[2])] if m})  # fmt: skip
    for row, key in enumerate(KINDS):
        for ax, maze in zip(axes[row], mazes, strict=True):
            _panel(ax, groups, maze, key, steps, taus)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    fig.suptitle(f"Value horizons (0 drawn at {FLOOR:g}); dotted: N x tau", fontsize=9)
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def _panel(ax, groups: dict, maze: str, key: str, steps: np.ndarray, taus: list[float]) -> None:
    """One maze's `key` horizon curves, mean over seeds, and the N tau lines."""
    for (env, algo, setting, readout), by_step in sorted(groups.items()):
        if env != maze or not all(np.isfinite(r[key]) for r in by_step[max(by_step)]):
            continue
        xs = sorted(by_step)
        ys = [max(_mean(by_step[s], key), FLOOR) for s in xs]
        label = f"{algo} {setting}" + ("" if readout == "value" else f" ({readout})")
        ax.plot(xs, ys, "--" if readout != "value" else "-", marker="o", ms=3, label=label)
    for tau in taus:
        ax.plot(steps, steps * tau, ":", color="grey", lw=1)
        ax.annotate(f"N x {tau:g}", (steps[-1], steps[-1] * tau), fontsize=7, color="grey")
    ax.set(xscale="log", yscale="log", title=f"{maze}: {TITLES[key].lower()}", xlabel="gradient steps",
           ylabel=f"{TITLES[key].lower()} (env steps)", ylim=(FLOOR * 0.8, 700))  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)


def write(directory: Path) -> list[Path]:
    """Writes horizon.csv, horizon.md and horizon.png into the sweep directory `directory`;
    RlxError if it holds no cell with value read-outs."""
    records = _records(Path(directory))
    rows = [row for rec in records for row in run_rows(rec)]
    if not rows:
        raise RlxError(f"{str(directory)!r} has no cell with value read-outs (value/median@...).")
    directory = Path(directory)
    out_csv = directory / "horizon.csv"
    with files.atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    md = directory / "horizon.md"
    files.write_text_atomic(md, render(records, rows))
    return [md, out_csv, plot(rows, directory / "horizon.png")]
