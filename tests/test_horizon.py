"""The value-horizon study (`rlx horizon`): resolved horizons from hand-made curves."""

from __future__ import annotations

import json

import pytest

from rlx.errors import RlxError
from rlx.report import horizon

EDGES = [(0, 10), (10, 20), (20, 40), (40, 80), (80, 160), (160, 320), (320, 640)]
NAN = float("nan")


def test_resolved_horizon_is_the_farthest_contiguous_resolved_bin():
    exact = [5.0, 15.0, 30.0, 60.0, 120.0, 240.0, NAN]
    good = [5.5, 14.0, 33.0, 70.0, 200.0, 250.0, NAN]  # the 80-160 bin is 67% off: stops at 80
    assert horizon.resolved_horizon(EDGES, good, exact) == 80.0
    assert horizon.resolved_horizon(EDGES, [NAN, *good[1:]], [NAN, *exact[1:]]) == 80.0
    assert horizon.resolved_horizon(EDGES, [7.0, *good[1:]], exact) == 80.0  # within 2 steps
    assert horizon.resolved_horizon(EDGES, [8.0, *good[1:]], exact) == 0.0  # nearest bin fails
    assert horizon.resolved_horizon(EDGES, [NAN, *good[1:]], exact) == 0.0  # no estimate fails
    assert horizon.resolved_horizon(EDGES, exact, exact) == 320.0


def test_propagation_horizon_is_where_the_estimate_stops_rising():
    exact = [5.0, 15.0, 30.0, 60.0, 120.0, 240.0, NAN]
    scaled = [15.0, 45.0, 90.0, 180.0, 360.0, 720.0, NAN]  # 3x the distance: propagates all
    assert horizon.propagation_horizon(EDGES, scaled, exact) == 320.0
    assert horizon.resolved_horizon(EDGES, scaled, exact) == 0.0  # but is calibrated nowhere
    saturated = [5.0, 15.0, 30.0, 50.0, 55.0, 56.0, NAN]  # 80-160 rises 5 < 30 (half of 60)
    assert horizon.propagation_horizon(EDGES, saturated, exact) == 80.0
    assert horizon.propagation_horizon(EDGES, [NAN, *scaled[1:]], [NAN, *exact[1:]]) == 320.0
    assert horizon.propagation_horizon(EDGES, [NAN, *scaled[1:]], exact) == 0.0


def _record(algo, tau, medians_by_step, seed=0):
    """A sweep cell record with one run whose curves hold the given medians per step."""
    steps = [0, *medians_by_step]
    curve = {"gradient_steps": steps, "value/spearman": [0.0] + [0.9] * len(medians_by_step)}
    exact = [5.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0]
    for b, (lo, hi) in enumerate(EDGES):
        curve[f"value/median@{lo}-{hi}"] = [NAN] + [m[b] for m in medians_by_step.values()]
        curve[f"value/exact_median@{lo}-{hi}"] = [NAN] + [exact[b]] * len(medians_by_step)
    for k in ("value/traj_mean", "value/traj_mean_opt", "value/traj_mean_offset",
              "value/traj_mae_opt", "value/traj_mae_offset"):  # fmt: skip
        curve[k] = [NAN] + [1.0] * len(medians_by_step)
    return {"algo": algo, "env": "pointmaze_medium", "config": {"total_steps": max(steps)},
            "budget": {"num_evals": len(medians_by_step)}, "seeds": [seed],
            "provenance": {"hardware": {"cpu": "x", "cpu_cores": 2, "backend": "cpu",
                                        "device_count": 1},
                           "versions": {"jax": "0"}, "git": "abc", "date": "today"},
            "runs": [{"seed": seed, "grid_point": {"tau": tau}, "curve": curve}]}  # fmt: skip


def test_write_tabulates_horizons_and_steps_to_reach(tmp_path):
    exact = [5.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0]
    short = [5.0, 15.0, 30.0, 20.0, 20.0, 20.0, 20.0]  # resolved to 40
    grown = [5.0, 15.0, 30.0, 60.0, 120.0, 100.0, 100.0]  # resolved to 160
    records = {
        "td": _record("gciql", 0.005, {1000: short, 2000: short, 4000: grown}),
        "trl": _record("trl", 0.005, {1000: short, 2000: grown, 4000: exact}),
    }
    for name, rec in records.items():
        (tmp_path / "cells" / name).mkdir(parents=True)
        (tmp_path / "cells" / name / "record.json").write_text(json.dumps(rec))
    md, csv_path, png = horizon.write(tmp_path)
    resolved, propagation = md.read_text().split("## Propagation horizon")
    row = "| pointmaze_medium | {} | tau=0.005 | value | {} |"
    assert row.format("gciql", "40 | 40 | 160 | 1,000 | 4,000 | 4,000") in resolved
    assert row.format("trl", "40 | 160 | 640 | 1,000 | 2,000 | 2,000") in resolved
    # The estimates rise with the distance up to the bin where they flatten out.
    assert row.format("gciql", "40 | 40 | 160 | 1,000 | 4,000 | 4,000") in propagation
    assert row.format("trl", "40 | 160 | 640 | 1,000 | 2,000 | 2,000") in propagation
    assert png.stat().st_size > 1000 and len(csv_path.read_text().splitlines()) == 7


def test_write_refuses_a_directory_without_cells(tmp_path):
    with pytest.raises(RlxError, match="not a sweep directory"):
        horizon.write(tmp_path)


def test_log_points_keep_powers_of_two_of_the_first():
    assert horizon.log_points([1000, 2000, 3000, 4000, 6000, 8000]) == [1000, 2000, 4000, 8000]
