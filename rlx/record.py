"""Run records on disk: record.json (everything), curves.csv, final.csv and summary.md.

A run directory is written atomically: into a hidden temporary sibling first, renamed into place
only when complete, so an interrupted or failed run never leaves a half-written directory.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from rlx import metrics
from rlx.errors import RlxError
from rlx.files import atomic_directory
from rlx.metrics import MetricRule
from rlx.provenance import describe_hardware


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuses an existing non-empty directory unless `overwrite`; checks the parent is writable."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise RlxError(f"output directory {str(out)!r} exists and is not empty; pass --overwrite.")
    parent = out.resolve().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise RlxError(f"cannot write under {str(probe)!r}.")


def grid_label(point: dict[str, Any]) -> str:
    """A grid point as text, e.g. 'learning_rate=0.001, gamma=0.99' ('' for no grid)."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items())


def axis(record: dict[str, Any]) -> str:
    """The curves' budget axis: the algorithm's unit (records before units: env_steps)."""
    return record["budget"].get("unit", "env_steps")


def rate(record: dict[str, Any]) -> float:
    """Training throughput in the record's unit per second."""
    t = record["timing"]
    return t.get("steps_per_s", t.get("env_steps_per_s", math.nan))


def rules(record: dict[str, Any]) -> dict[str, MetricRule]:
    """The record's metric rules (labels, reductions); for records written before rules were
    stored, the rules the algorithm and env declare now."""
    if "metrics" in record:
        return metrics.from_json(record["metrics"])
    from rlx import algorithm, envs, evaluation

    env = envs.make(record["env"], **record.get("env_kwargs", {}))
    return {**evaluation.metric_rules(env), **algorithm.get(record["algo"]).metric_rules(env)}


def _mean_std(values: list[float]) -> str:
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return "n/a"
    return f"{arr.mean():.1f} ± {arr.std():.1f}"


def curves_csv(record: dict[str, Any]) -> str:
    """Long-format learning curves: one row per (run, evaluation point)."""
    runs = record["runs"]
    grid_keys = list(record["grid"])
    x = axis(record)
    names = sorted({k for r in runs for k in r["curve"] if k != x})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["run", "seed", *grid_keys, x, *names])
    for r in runs:
        curve = r["curve"]
        for t, steps in enumerate(curve[x]):
            values = [curve[m][t] if m in curve and t < len(curve[m]) else "" for m in names]
            writer.writerow(
                [r["run"], r["seed"], *(r["grid_point"][k] for k in grid_keys), steps, *values]
            )
    return buf.getvalue()


def final_csv(record: dict[str, Any]) -> str:
    """Per-run final metrics: one row per run."""
    runs = record["runs"]
    grid_keys = list(record["grid"])
    names = sorted({k for r in runs for k in r["final"]})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["run", "seed", *grid_keys, *names])
    for r in runs:
        writer.writerow([r["run"], r["seed"], *(r["grid_point"][k] for k in grid_keys),
                         *(r["final"].get(m, "") for m in names)])  # fmt: skip
    return buf.getvalue()


def header(record: dict[str, Any]) -> list[str]:
    """Provenance lines: hardware, versions, git revision, date, budget."""
    prov = record["provenance"]
    v = prov["versions"]
    budget = record["budget"]
    return [
        f"- hardware: {describe_hardware(prov['hardware'])}",
        f"- versions: python {v['python']}, jax {v['jax']}, flax {v['flax']}, optax {v['optax']}, "
        f"brax {v['brax']}, mujoco {v['mujoco']}, mujoco-mjx {v['mujoco-mjx']}",
        f"- git {prov['git']}, {prov['date']}, matmul precision {prov['matmul_precision']}",
        f"- budget: {budget['total_steps_per_run']:,} {axis(record).replace('_', ' ')} per run, "
        f"{len(record['seeds'])} seeds, "
        f"{budget['num_evals']} evaluations of {budget['eval_episodes']} deterministic episodes",
    ]


def summary_markdown(record: dict[str, Any]) -> str:
    """The learning-curve table (eval return mean ± std over seeds at each evaluation point)."""
    runs = record["runs"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(grid_label(r["grid_point"]) or "default", []).append(r)
    has_goal = any("eval/goal_reached" in r["curve"] for r in runs)
    cols = []
    for label in groups:
        cols.append(f"return [{label}]" if len(groups) > 1 else "eval return")
        if has_goal:
            cols.append(f"goal rate [{label}]" if len(groups) > 1 else "goal rate")
    lines = [
        f"# {record['algo']} on {record['env']}",
        "",
        *header(record),
        "",
        f"| {axis(record).replace('_', ' ')} | " + " | ".join(cols) + " |",
        "|---:|" + "---:|" * len(cols),
    ]
    steps = runs[0]["curve"][axis(record)]
    for t, step in enumerate(steps):
        cells = []
        for members in groups.values():
            cells.append(_mean_std([m["curve"]["eval/return"][t] for m in members]))
            if has_goal:
                goal = [
                    m["curve"].get("eval/goal_reached", [math.nan] * len(steps))[t] for m in members
                ]
                cells.append(f"{100 * float(np.mean(goal)):.0f}%")
        lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
    t = record["timing"]
    lines += [
        "",
        f"Mean ± std over seeds of the deterministic policy's episode return. "
        f"Training throughput {rate(record):,.0f} {axis(record).replace('_', ' ')}/s over all runs "
        f"({t['train_s']:.1f} s training, {t['compile_s']:.1f} s compiling, {t['eval_s']:.1f} s evaluating).",
        "",
    ]
    return "\n".join(lines)


def write_run(
    out: Path,
    record: dict[str, Any],
    overwrite: bool = False,
    copy_in: dict[str, Path] | None = None,
) -> Path:
    """Writes the record's files into `out` atomically; returns `out`. `copy_in` names
    directories (e.g. ``{"tensorboard": <events written while running>}``) copied into `out`
    under those names before it appears; missing ones are skipped."""
    out = Path(out)
    check_out_dir(out, overwrite)
    with atomic_directory(out) as tmp:
        (tmp / "record.json").write_text(json.dumps(record, indent=1, default=float))
        (tmp / "curves.csv").write_text(curves_csv(record))
        (tmp / "final.csv").write_text(final_csv(record))
        (tmp / "summary.md").write_text(summary_markdown(record))
        for name, source in (copy_in or {}).items():
            if Path(source).is_dir():
                shutil.copytree(source, tmp / name, symlinks=True)
    return out


def console_summary(record: dict[str, Any], out: Path | None) -> str:
    """A few lines for the terminal: final return per grid point, speed, where the files are."""
    lines = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in record["runs"]:
        groups.setdefault(grid_label(r["grid_point"]) or "default", []).append(r)
    for label, members in groups.items():
        ret = _mean_std([m["final"]["eval/return"] for m in members])
        goal = [m["final"].get("eval/goal_reached") for m in members]
        goal_txt = (
            f", goal reached {100 * float(np.mean(goal)):.0f}%" if goal[0] is not None else ""
        )
        first = _mean_std([m["curve"]["eval/return"][0] for m in members])
        lines.append(
            f"{record['algo']} on {record['env']} [{label}], {len(members)} seeds: "
            f"final eval return {ret} (untrained {first}){goal_txt}"
        )
    t, unit = record["timing"], axis(record).replace("_", " ")
    lines.append(
        f"{t.get('steps_total', t.get('env_steps_total', 0)):,} {unit} "
        f"at {rate(record):,.0f} {unit}/s; "
        f"compile {t['compile_s']:.1f} s, wall {t['wall_s']:.1f} s"
    )
    if out is not None:
        lines.append(f"run record: {out}/record.json; learning-curve table: {out}/summary.md")
    return "\n".join(lines)
