"""The reporting protocol of a sweep: a run's score as the mean of its last K evaluation points
(``final_evals``, OGBench's averaging), hand-computed; published figures (``[reference]``)
listed apart from our rows with their budget in full; and the validation of both in sweep
files (one-line errors), which leave every plan hash alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_sweep import TINY, write_one_cell_sweep

from rlx import sweep
from rlx.errors import RlxError
from rlx.report import table

STEPS = [0, 100, 200, 300, 400, 500]
CURVES = [[0.0, 0.1, 0.2, 0.4, 0.6, 0.9], [0.0, 0.0, 0.3, 0.3, 0.5, 0.1]]
"""Two runs' curves over 5 evaluations (point 0 is the untrained policy)."""


def _sweep_dir(tmp_path: Path, final_evals: int | None, references: dict | None = None) -> Path:
    """A results directory of one cell with two runs of `CURVES`."""
    runs = [{"run": i, "seed": i, "grid_point": {}, "final": {"eval/return": c[-1]},
             "curve": {"env_steps": STEPS, "eval/return": c}} for i, c in enumerate(CURVES)]  # fmt: skip
    extra = {"references": references or {}}
    if final_evals is not None:
        extra["final_evals"] = final_evals
    budget = {"total_steps_per_run": 500, "num_evals": 5, "eval_episodes": 10}
    return write_one_cell_sweep(tmp_path, runs, budget, extra)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_final_value_is_the_mean_of_the_last_k_evaluation_points():
    run = {"final": {"a": 0.9}, "curve": {"a": CURVES[0]}}
    assert table.final_value(run, "a") == 0.9
    assert table.final_value(run, "a", 3) == pytest.approx((0.4 + 0.6 + 0.9) / 3)
    assert table.run_value(run, "a", 3) == pytest.approx(0.6333333)
    assert table.run_value(run, "a@2", 3) == 0.2  # a named point is that point, whatever K
    assert math.isnan(table.final_value(run, "a", 7)) and math.isnan(table.final_value(run, "b", 3))


def test_table_scores_each_run_by_its_last_k_evaluations(tmp_path):
    out = _sweep_dir(tmp_path, final_evals=3)
    (row,) = table.rows(*table.load_records(out))
    per_run = [(0.4 + 0.6 + 0.9) / 3, (0.3 + 0.5 + 0.1) / 3]  # 0.6333..., 0.3
    assert row["eval/return"]["mean"] == pytest.approx(np.mean(per_run))
    assert row["eval/return"]["std"] == pytest.approx(np.std(per_run))
    md = table.markdown(*table.load_records(out))
    assert (
        "the score of a run is the mean of its last 3 evaluations (at 300, 400, 500 env steps)"
        in md
    )
    # binned plots read their final values by the same rule
    rec = json.loads((out / "cells" / "c" / "record.json").read_text())
    for r, c in zip(rec["runs"], CURVES, strict=True):
        r["final"]["v@0-10"], r["curve"]["v@0-10"] = c[-1], c
    (_, scores), = table.binned_curves([rec], "v", 3)["pendulum_swingup"].values()  # fmt: skip
    assert scores[:, 0] == pytest.approx(per_run)


def test_default_rule_is_the_last_evaluation(tmp_path):
    out = _sweep_dir(tmp_path, final_evals=None)  # a sweep.json written before final_evals
    (row,) = table.rows(*table.load_records(out))
    assert row["eval/return"]["mean"] == pytest.approx((0.9 + 0.1) / 2)
    assert "the score of a run is its last evaluation" in table.markdown(*table.load_records(out))


def test_published_figures_stand_apart_with_their_budget_in_full(tmp_path):
    refs = {"ppo/pendulum_swingup": {"value": -150, "source": "Paper 2025, Table 2",
                                     "steps": 3_000_000, "batch": 1024, "seeds": 8,
                                     "quick_value": -900, "quick_steps": 100_000}}  # fmt: skip
    out = _sweep_dir(tmp_path, final_evals=1, references=refs)
    md = table.markdown(*table.load_records(out))
    ours, _, published = md.partition(f"## {table.PUBLISHED_TITLE}")
    assert "-150" not in ours and "Paper 2025" not in ours and "reference" not in ours
    lines = published.splitlines()
    assert (
        lines[2] == "| algorithm | environment | metric | value | source | steps | batch | seeds |"
    )
    assert (
        lines[4]
        == "| ppo | pendulum_swingup | return | -150 | Paper 2025, Table 2 | 3M | 1024 | 8 |"
    )
    assert (
        lines[5]
        == "| ppo | pendulum_swingup | return | -900 | Paper 2025, Table 2 | 100k | 1024 | 8 |"
    )
    refs["ppo/pendulum_swingup"] = {"value": 0.5, "network": "3x512"}
    (out / "sweep.json").write_text(json.dumps({**json.loads((out / "sweep.json").read_text()),
                                                "references": refs}))  # fmt: skip
    md = table.markdown(*table.load_records(out))
    assert "| ppo | pendulum_swingup | return | 0.5 |  | 3x512 |" in md
    assert "reference" not in table.csv_text(*table.load_records(out)).splitlines()[0]


def test_a_shared_reference_fills_every_entry_and_no_plan_hash_moves(tmp_path):
    text = TINY + (
        '\n[reference."*"]\nsteps = 1_000_000\nnetwork = "3x512"\ngamma = 0.99\n'
        '[reference."ppo/pendulum_swingup"]\nvalue = 0.5\nsource = "paper"\ngamma = 0.995\n'
    )
    loaded = sweep.load(_write(tmp_path, text))
    assert loaded.references == {"ppo/pendulum_swingup": {
        "steps": 1_000_000, "network": "3x512", "gamma": 0.995, "value": 0.5, "source": "paper"}}  # fmt: skip
    assert loaded.final_evals == 1
    averaged = sweep.load(
        _write(tmp_path, text.replace("num_evals = 3", "num_evals = 3\nfinal_evals = 3"))
    )
    assert averaged.final_evals == 3 and averaged.digest() == loaded.digest()  # a reporting rule
    bare = sweep.load(_write(tmp_path, TINY))
    assert bare.digest() == loaded.digest()  # references are not in the plans either


@pytest.mark.parametrize(
    "extra, message",
    [
        ("final_evals = 4\n", r"s\.toml:\d+: final_evals \(4\) must be at most num_evals \(3\)"),
        ("final_evals = 0\n", "final_evals must be a positive integer"),
        ("final_evals = 1.5\n", "final_evals must be int"),
        ('[reference."ppo/pendulum_swingup"]\nvalue = 1.0\nsteps = "3M"\n', "steps must be int"),
        ('[reference."ppo/pendulum_swingup"]\nvalue = 1.0\nbatch = "1024"\n', "batch must be int"),
        ('[reference."ppo/pendulum_swingup"]\nvalue = 1.0\nnetwork = 512\n', "network must be str"),
        (
            '[reference."ppo/pendulum_swingup"]\nvalue = 1.0\nbudget = 3\n',
            "needs value and may set",
        ),
        ('[reference."ppo/pendulum_swingup"]\nsource = "x"\n', "needs value"),
        ('[reference."*"]\nvalue = 1.0\n', r'reference\."\*" may set'),
    ],
)
def test_bad_protocol_and_reference_keys_are_one_line_errors(tmp_path, extra, message):
    text = (
        TINY.replace("[settings.ppo]", extra + "[settings.ppo]")
        if "final" in extra
        else TINY + extra
    )
    with pytest.raises(RlxError, match=message) as err:
        sweep.load(_write(tmp_path, text))
    assert "\n" not in str(err.value)
