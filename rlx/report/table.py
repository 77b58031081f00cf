"""Benchmark tables and plots from the run records of a sweep directory (never typed by hand).

`rlx table DIR` writes table.md, table.csv and table.tex; `rlx plot DIR` writes
learning_curves.png and performance_profile.png. A row is one grid point of one cell
(algorithm x environment): per-seed final scores (the last evaluation point, or the mean of the
last ``final_evals`` points where the sweep file sets it) summarised as mean ± std and as the
interquartile mean with a stratified-bootstrap 95% confidence interval. Runs that failed
(NaN/Inf) are left out of the statistics and counted in the 'failed' column. Published figures
(the sweep file's ``[reference]`` entries) never sit in these rows: they are listed apart, each
with its own budget in full.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rlx import files, record
from rlx.errors import RlxError
from rlx.metrics import MetricRule
from rlx.provenance import code_identity, describe_hardware
from rlx.report import plots, stats


def load_records(directory: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sweep's meta (sweep.json) and the records of its finished cells, in sweep order."""
    directory = Path(directory)
    meta_path = directory / "sweep.json"
    if not meta_path.is_file():
        raise RlxError(f"{str(directory)!r} is not a sweep results directory (no sweep.json).")
    meta = json.loads(meta_path.read_text())
    records = []
    for key, cell in meta["cells"].items():
        path = directory / "cells" / cell["dir"] / "record.json"
        if not path.is_file():
            continue
        rec = json.loads(path.read_text())
        if rec.get("config_hash") != cell["hash"]:
            raise RlxError(
                f"{path} was written by a different configuration than {meta_path} "
                f"(hash {rec.get('config_hash')} != {cell['hash']}) for cell {key}."
            )
        records.append(rec)
    if not records:
        raise RlxError(f"no finished cells in {str(directory)!r}; run `rlx sweep` first.")
    return meta, records


def missing_cells(meta: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """The sweep's cells ('algo/env') that have no finished record yet (e.g. other shards')."""
    done = {f"{r['algo']}/{r['env']}" for r in records}
    return [key for key in meta["cells"] if key not in done]


def metric_rules(records: list[dict[str, Any]]) -> dict[str, MetricRule]:
    """The metric rules (labels, percentages) of every record, merged."""
    out: dict[str, MetricRule] = {}
    for rec in records:
        out.update(record.rules(rec))
    return out


def split_point(metric: str) -> tuple[str, int | None]:
    """A table metric as (name, evaluation point): ``name@K`` with an integer K names point K,
    anything else (``value/mae@25-50`` is a binned metric's own name) the final value."""
    name, at, index = metric.rpartition("@")
    if at and index.isdigit():
        return name, int(index)
    return metric, None


def metric_label(metric: str, rules: dict[str, MetricRule]) -> str:
    """Column label of a table metric: ``name`` (its final value) or ``name@K`` (its value at
    evaluation point K; for training metrics, K = 1 is the first chunk of the budget)."""
    name, index = split_point(metric)
    base = rules.get(name, MetricRule()).label or name
    return f"{base} at eval {index}" if index is not None else base


def final_value(run: dict[str, Any], name: str, final_evals: int = 1) -> float:
    """A run's final value of metric `name`: the mean of its last `final_evals` evaluation
    points (1: the last point, the record's ``final``); NaN where the run has no such metric
    or fewer points."""
    if final_evals == 1:
        return run["final"].get(name, math.nan)
    curve = run["curve"].get(name, [])
    if len(curve) < final_evals:
        return math.nan
    return float(np.mean(np.asarray(curve[-final_evals:], dtype=np.float64)))


def run_value(run: dict[str, Any], metric: str, final_evals: int = 1) -> float:
    """A run's score for a table metric: its final value (`final_value`), or with ``@K`` its
    value at evaluation point K (NaN where the run has no such metric or point)."""
    name, index = split_point(metric)
    if index is None:
        return final_value(run, name, final_evals)
    curve = run["curve"].get(name, [])
    return curve[index] if index < len(curve) else math.nan


def final_rule(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """How a run's score is read, for the table's budget line: its last evaluation, or the
    mean of its last K with the steps they were taken at."""
    k = int(meta.get("final_evals", 1))
    if k == 1:
        return "the score of a run is its last evaluation"
    axis = record.axis(records[0])
    steps = records[0]["runs"][0]["curve"].get(axis, [])[-k:]
    at = f" (at {', '.join(steps_text(int(x)) for x in steps)} {axis.replace('_', ' ')})"
    return f"the score of a run is the mean of its last {k} evaluations{at if steps else ''}"


PUBLISHED_TITLE = "Published figures (their budget, not comparable to ours)"
BUDGET_LABELS = {
    "steps": "steps",
    "batch": "batch",
    "network": "network",
    "seeds": "seeds",
    "episodes": "eval episodes",
    "evaluation": "evaluation",
    "data": "data",
    "gamma": "gamma",
}
"""Column labels of a reference's budget fields (`rlx.sweep.REFERENCE_BUDGET`), in order."""


def published_figures(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The sweep's published figures, one per reference (and a second where it gives a
    ``quick_value``, read at ``quick_steps``): algorithm, environment, metric (None: the
    headline), value, source and its budget fields."""
    out = []
    for key, ref in (meta.get("references") or {}).items():
        algo, _, env = key.partition("/")
        budget = {k: ref[k] for k in BUDGET_LABELS if k in ref}
        base = {"algorithm": algo, "environment": env, "metric": ref.get("metric"),
                "value": ref["value"], "source": ref.get("source", ""), **budget}  # fmt: skip
        out.append(base)
        if "quick_value" in ref:
            early = {k: v for k, v in base.items() if k != "steps"}
            if "quick_steps" in ref:
                early["steps"] = ref["quick_steps"]
            early.update(value=ref["quick_value"],
                         source=ref.get("quick_source", base["source"]))  # fmt: skip
            out.append(early)
    return out


def published_lines(meta: dict[str, Any], rules: dict[str, MetricRule]) -> list[str]:
    """The Markdown table of published figures (empty without references): each with its
    budget in full, 'not stated' where the sweep file gives no field."""
    figures = published_figures(meta)
    if not figures:
        return []
    headline = (meta.get("table_metrics") or ["eval/return"])[0]
    fields = [k for k in BUDGET_LABELS if any(k in f for f in figures)]
    cols = ["algorithm", "environment", "metric", "value", "source"]
    cols += [BUDGET_LABELS[k] for k in fields]
    lines = [f"## {PUBLISHED_TITLE}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for f in figures:
        metric = f["metric"] or headline
        percent = rules.get(split_point(metric)[0], MetricRule()).percent
        value = _num(f["value"], metric, rules) if percent else f"{f['value']:g}"
        cells = [f["algorithm"], f["environment"], metric_label(metric, rules), value, f["source"]]
        for k in fields:
            v = f.get(k)
            cells.append("not stated" if v is None else steps_text(v) if k == "steps" else str(v))
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return lines


def steps_text(steps: int) -> str:
    """3000000 -> '3M', 160000 -> '160k'."""
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if steps >= size:
            return f"{steps / size:.3g}{unit}"
    return str(steps)


def rows(meta: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (cell, grid point) with the statistics of each table metric."""
    metrics = meta.get("table_metrics") or ["eval/return"]
    last = int(meta.get("final_evals", 1))
    out = []
    for rec in records:
        groups: dict[str, list[dict[str, Any]]] = {}
        for run in rec["runs"]:
            groups.setdefault(record.grid_label(run["grid_point"]), []).append(run)
        for label, runs in groups.items():
            ok = [r for r in runs if "failed" not in r]
            row: dict[str, Any] = {
                "algorithm": rec["algo"],
                "environment": rec["env"],
                "setting": label or "default",
                "seeds": len(ok),
                "failed": len(runs) - len(ok),
                "failed_detail": [
                    f"seed {r['seed']} at {r['failed'].get('steps', r['failed'].get('env_steps')):,} "
                    f"steps ({r['failed']['metric']})"
                    for r in runs
                    if "failed" in r
                ],
                "env_steps": rec["budget"]["total_steps_per_run"],
                "wall_s": rec["timing"]["wall_s"],
                "env_steps_per_s": record.rate(rec),
            }
            for m in metrics:
                scores = np.array([run_value(r, m, last) for r in ok], dtype=np.float64)
                scores = scores[np.isfinite(scores)]
                if scores.size == 0:
                    row[m] = None
                    continue
                mean, std = stats.mean_std(scores)
                point, lo, hi = stats.stratified_bootstrap_ci(scores, reps=2000, seed=0)
                row[m] = {
                    "mean": mean,
                    "std": std,
                    "iqm": point,
                    "ci": [lo, hi],
                    "n": int(scores.size),
                }
            out.append(row)
    return out


def _num(x: float, metric: str, rules: dict[str, MetricRule], digits: int = 1) -> str:
    percent = rules.get(split_point(metric)[0], MetricRule()).percent
    return f"{100 * x:.0f}%" if percent else f"{x:.{digits}f}"


def _digits(s: dict[str, Any]) -> int:
    """Decimals of a cell: 2 where every figure is below 1 in magnitude (rank correlations,
    small returns), else 1."""
    return 2 if max(abs(v) for v in (s["mean"], s["std"], s["iqm"], *s["ci"])) < 1 else 1


def _cells(row: dict[str, Any], metrics: list[str], rules: dict[str, MetricRule]) -> list[str]:
    cells = []
    for i, m in enumerate(metrics):
        s = row[m]
        if s is None:
            cells += ["n/a"] * (2 if i == 0 else 1)
            continue
        d = _digits(s)
        fmt = lambda x, m=m, d=d: _num(x, m, rules, d)  # noqa: E731
        if i == 0:
            cells += [
                f"{fmt(s['mean'])} ± {fmt(s['std'])}",
                f"{fmt(s['iqm'])} [{fmt(s['ci'][0])}, {fmt(s['ci'][1])}]",
            ]
        else:
            cells.append(
                f"{fmt(s['mean'])} ± {fmt(s['std'])} [{fmt(s['ci'][0])}, {fmt(s['ci'][1])}]"
            )
    return cells


def _header_lines(meta: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    prov = records[0]["provenance"]
    v = prov["versions"]
    gits = sorted({code_identity(r["provenance"]) for r in records})
    dates = sorted(r["provenance"]["date"] for r in records)
    several = f" (cells from {len(gits)} code revisions; each cell's record.json names its own)"
    when = (
        f"started {dates[0]}" if dates[0] == dates[-1] else f"runs from {dates[0]} to {dates[-1]}"
    )
    return [
        f"- hardware: {describe_hardware(prov['hardware'])}",
        f"- versions: python {v['python']}, jax {v['jax']}, flax {v['flax']}, optax {v['optax']}, "
        f"brax {v['brax']}, mujoco {v['mujoco']}, mujoco-mjx {v['mujoco-mjx']}",
        f"- git {', '.join(gits)}{several if len(gits) > 1 else ''}; {when}; matmul precision "
        f"{prov['matmul_precision']}",
        f"- budget: {'--quick profile' if meta.get('quick') else 'full budget'}; "
        f"{records[0]['budget']['num_evals']} evaluations of {records[0]['budget']['eval_episodes']} "
        f"deterministic episodes; {final_rule(meta, records)}",
    ]


def markdown(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The Markdown table with its provenance header."""
    metrics = meta.get("table_metrics") or ["eval/return"]
    rules = metric_rules(records)
    unit = record.axis(records[0]).replace("_", " ")
    head = metric_label(metrics[0], rules)
    cols = ["algorithm", "environment", "setting", "seeds", f"{unit}/run",
            f"{head} mean ± std", f"{head} IQM [95% CI]"]  # fmt: skip
    cols += [f"{metric_label(m, rules)} mean ± std [IQM 95% CI]" for m in metrics[1:]]
    cols += ["wall-clock s", f"{unit}/s"]
    lines = [f"# {meta['name']}", ""]
    if meta.get("description"):
        lines += [meta["description"], ""]
    lines += _header_lines(meta, records)
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    notes = []
    table_rows = rows(meta, records)
    for row in table_rows:
        seeds = f"{row['seeds']}" + (f" ({row['failed']} failed)" if row["failed"] else "")
        cells = [
            row["algorithm"],
            row["environment"],
            row["setting"],
            seeds,
            f"{row['env_steps']:,}",
        ]
        cells += _cells(row, metrics, rules)
        cells += [f"{row['wall_s']:.0f}", f"{row['env_steps_per_s']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
        notes += [f"- {row['algorithm']}/{row['environment']}: {d}" for d in row["failed_detail"]]
    lines.append("")
    lines.append(
        "IQM: interquartile mean over seeds; CI: 95% stratified-bootstrap percentile interval "
        f"(2,000 resamples). Wall-clock and {unit}/s are per cell (all its runs in one program)."
    )
    if notes:
        lines += ["", "Failed runs (left out of the statistics):", *notes]
    missing = missing_cells(meta, records)
    if missing:
        lines += ["", f"Not finished yet ({len(missing)} of {len(meta['cells'])} cells, left out): "
                  + ", ".join(missing)]  # fmt: skip
    published = published_lines(meta, rules)
    if published:
        lines += ["", *published]
    return "\n".join(lines) + "\n"


def csv_text(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The same rows as CSV, with numbers unformatted."""
    metrics = meta.get("table_metrics") or ["eval/return"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    head = ["algorithm", "environment", "setting", "seeds", "failed", "env_steps"]
    for m in metrics:
        head += [f"{m} mean", f"{m} std", f"{m} iqm", f"{m} ci_low", f"{m} ci_high"]
    head += ["wall_s", "env_steps_per_s"]
    writer.writerow(head)
    for row in rows(meta, records):
        line = [
            row[k] for k in ("algorithm", "environment", "setting", "seeds", "failed", "env_steps")
        ]
        for m in metrics:
            s = row[m]
            line += [s["mean"], s["std"], s["iqm"], *s["ci"]] if s else [""] * 5
        line += [row["wall_s"], row["env_steps_per_s"]]
        writer.writerow(line)
    return buf.getvalue()


def _tex(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("#", r"\#"),
    ):
        text = text.replace(a, b)
    return text.replace("±", r"$\pm$")


def latex(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """A booktabs tabular of the headline metric."""
    metrics = meta.get("table_metrics") or ["eval/return"]
    rules = metric_rules(records)
    head = metric_label(metrics[0], rules)
    lines = [
        r"\begin{tabular}{lllrrll}",
        r"\toprule",
        f"Algorithm & Environment & Setting & Seeds & Env steps & {_tex(head)} mean $\\pm$ std "
        r"& IQM [95\% CI] \\",
        r"\midrule",
    ]
    for row in rows(meta, records):
        c = _cells(row, metrics, rules)
        cells = [
            row["algorithm"],
            row["environment"],
            row["setting"],
            str(row["seeds"]),
            f"{row['env_steps']:,}",
            c[0],
            c[1],
        ]
        lines.append(" & ".join(_tex(x) for x in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def write_tables(directory: Path) -> list[Path]:
    """Writes table.md, table.csv and table.tex into the sweep directory."""
    directory = Path(directory)
    meta, records = load_records(directory)
    out = []
    for name, text in (
        ("table.md", markdown(meta, records)),
        ("table.csv", csv_text(meta, records)),
        ("table.tex", latex(meta, records)),
    ):
        out.append(files.write_text_atomic(directory / name, text))
    return out


def write_plots(directory: Path) -> list[Path]:
    """Writes learning_curves.png (and learning_curves_<metric>.png for every further plot
    metric) and performance_profile.png (of the first) into the sweep directory."""
    directory = Path(directory)
    meta, records = load_records(directory)
    metrics = meta.get("plot_metrics") or [meta.get("plot_metric") or "eval/return"]
    mark = meta.get("plot_mark")
    last = int(meta.get("final_evals", 1))
    rules = metric_rules(records)
    paths = []
    for i, metric in enumerate(metrics):
        curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        finals: dict[str, dict[str, np.ndarray]] = {}
        for rec in records:
            groups: dict[str, list[dict[str, Any]]] = {}
            for run in rec["runs"]:
                point = run["grid_point"]
                label = rec["algo"] + (f" [{record.grid_label(point)}]" if point else "")
                groups.setdefault(label, []).append(run)
            for label, runs in groups.items():
                steps = np.asarray(runs[0]["curve"][record.axis(rec)], dtype=np.float64)
                scores = np.array(
                    [r["curve"].get(metric, [math.nan] * len(steps)) for r in runs],
                    dtype=np.float64,
                )
                for j, r in enumerate(runs):
                    if "failed" in r:
                        scores[j] = math.nan
                curves.setdefault(rec["env"], {})[label] = (steps, scores)
                final = scores[:, -last:].mean(axis=1)
                finals.setdefault(label, {})[rec["env"]] = final[np.isfinite(final)]
        name = "learning_curves.png" if i == 0 else f"learning_curves_{_slug(metric)}.png"
        where = (mark["fraction"], mark["label"]) if mark else None
        paths.append(
            plots.learning_curves(
                curves,
                directory / name,
                title=meta["name"],
                ylabel=metric_label(metric, rules),
                xlabel=record.axis(records[0]).replace("_", " "),
                mark=where,
            )
        )
        if i == 0 and all(v.size for per_env in finals.values() for v in per_env.values()):
            paths.append(
                plots.performance_profile(
                    finals, directory / "performance_profile.png", title=meta["name"]
                )
            )
    return paths + write_binned_plots(directory, meta, records, rules)


def _bins(rec: dict[str, Any], prefix: str) -> list[tuple[str, float]]:
    """The ``<prefix>@<lo>-<hi>`` metrics of a record with their bin centres, in order."""
    found = []
    for name in rec["runs"][0]["final"]:
        base, at, span = name.partition("@")
        lo, dash, hi = span.partition("-")
        if base == prefix and at and dash:
            found.append((name, (float(lo) + float(hi)) / 2))
    return sorted(found, key=lambda item: item[1])


def binned_curves(records: list[dict[str, Any]], prefix: str, final_evals: int = 1):
    """``curves[env][algorithm] = (bin centres, final values [runs, bins])`` of the binned
    metric `prefix` (final values by `final_value`; failed runs NaN); records without it are
    left out."""
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for rec in records:
        bins = _bins(rec, prefix)
        if not bins:
            continue
        scores = np.array([[final_value(r, n, final_evals) if "failed" not in r else math.nan
                            for n, _ in bins] for r in rec["runs"]], dtype=np.float64)  # fmt: skip
        curves.setdefault(rec["env"], {})[rec["algo"]] = (np.array([c for _, c in bins]), scores)
    return curves


def write_binned_plots(directory: Path, meta: dict[str, Any], records, rules) -> list[Path]:
    """``<metric>_by_bin.png`` for every [plot] binned metric: its final value against the bin
    centre (e.g. value error against the exact distance), IQM and 95% CI over seeds."""
    paths = []
    for prefix in meta.get("plot_binned") or []:
        curves = binned_curves(records, prefix, int(meta.get("final_evals", 1)))
        if not curves:
            continue
        label = rules.get(prefix, MetricRule()).label or prefix
        paths.append(plots.learning_curves(
            curves, directory / f"{_slug(prefix)}_by_bin.png", title=meta["name"],
            ylabel=f"{label} (final)", xlabel="bin centre (exact distance, steps)",
        ))  # fmt: skip
    return paths


def _slug(metric: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in metric).strip("_")
