"""The run record's terminal summary names the budget's own unit."""

from __future__ import annotations

from rlx import record


def _record(unit: str, total: int, per_s: float) -> dict:
    run = {"grid_point": {}, "final": {"eval/return": 1.0}, "curve": {"eval/return": [0.0, 1.0]}}
    return {
        "algo": "habc",
        "env": "squeeze_lift_l1",
        "runs": [run, run],
        "budget": {"unit": unit},
        "timing": {"steps_total": total, "steps_per_s": per_s, "compile_s": 2.0, "wall_s": 9.0},
    }


def test_console_summary_states_the_rate_in_the_budget_unit():
    episodes = record.console_summary(_record("episodes", 4096, 7.2), None).splitlines()[-1]
    assert episodes == "4,096 episodes at 7 episodes/s; compile 2.0 s, wall 9.0 s"
    steps = record.console_summary(_record("env_steps", 300_000, 5_123.4), None).splitlines()[-1]
    assert steps == "300,000 env steps at 5,123 env steps/s; compile 2.0 s, wall 9.0 s"
