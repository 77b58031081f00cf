"""The run record of an executed plan: a JSON-ready dict (written to disk by `rlx.record`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from rlx import evaluation
from rlx import metrics as metric_rules
from rlx.runner.curves import Curves
from rlx.runner.plan import RunPlan, plan_hash, plan_spec
from rlx.runner.store import Timing


def run_rows(rp: RunPlan, curves: Curves) -> list[dict[str, Any]]:
    """One row per run: seed, grid point, final values (the last evaluation point), curves,
    and where it failed (if it did)."""
    rows = []
    for i, (curve, (g, seed)) in enumerate(zip(curves.aligned(), rp.runs, strict=True)):
        row = {
            "run": i,
            "seed": seed,
            "grid_point": rp.points[g],
            "final": {k: v[-1] for k, v in curve.items()},
            "curve": curve,
        }
        if str(i) in curves.failures:
            row["failed"] = curves.failures[str(i)]
        rows.append(row)
    return rows


def build(
    rp: RunPlan,
    env,
    curves: Curves,
    timing: Timing,
    execution: dict[str, Any],
    started: dict[str, Any],
) -> dict[str, Any]:
    """The record: plan, budget, execution, timing and throughput, provenance (read when the run
    started), the metric rules (reductions and labels) and every run's curves."""
    algo = rp.algorithm
    total = len(rp.runs) * rp.base_config.num_updates * rp.base_config.steps_per_update
    rate = total / max(timing.train_s, 1e-9)
    rules = {**evaluation.metric_rules(env), **algo.metric_rules(env)}
    throughput = {"steps_total": total, "steps_per_s": rate}
    if algo.unit.value == "env_steps":  # the names tables and benchmarks have always read
        throughput.update(env_steps_total=total, env_steps_per_s=rate)
    return {
        "kind": "rlx.run",
        "config_hash": plan_hash(rp),
        **plan_spec(rp),
        "budget": {
            "unit": algo.unit.value,
            "total_steps_per_run": rp.base_config.total_steps,
            "num_evals": rp.num_evals,
            "eval_episodes": rp.eval_episodes,
            "steps_per_update": rp.base_config.steps_per_update,
        },
        "execution": execution,
        "timing": {**dataclasses.asdict(timing), **throughput},
        "provenance": started,
        "metrics": metric_rules.as_json(rules),
        "runs": run_rows(rp, curves),
        "module": algo.name,
    }
