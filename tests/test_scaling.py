"""`rlx bench --scaling`: its points, and that a run stopped early keeps what it measured."""

from __future__ import annotations

import json

import pytest

from rlx.bench import scaling

TINY = dict(num_envs=4, unroll_length=4, num_minibatches=2, num_epochs=1, hidden=(8, 8),
            activation="tanh", learning_rate=1e-3, gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
            entropy_coef=0.0, reward_scaling=0.1, max_grad_norm=0.5, episode_length=8)  # fmt: skip


def _fake_point(seeds: int, num_envs: int) -> dict:
    return {"seeds": seeds, "num_envs": num_envs, "update_s": 0.01 * seeds,
            "env_steps_per_s": 1000.0 * seeds, "grad_steps_per_s": None, "memory_mb": 1.0,
            "compile_s": 1.0}  # fmt: skip


@pytest.mark.slow
def test_measure_times_a_real_ppo_point():
    overrides = scaling.rlx_overrides(TINY, 1)
    p = scaling.measure("ppo", "pendulum_swingup", None, overrides, seeds=2, updates=1)
    assert p["seeds"] == 2 and p["num_envs"] == 4
    assert p["env_steps_per_s"] == pytest.approx(2 * 4 * 4 / p["update_s"])
    assert p["memory_mb"] > 0 and p["compile_s"] > 0 and p["grad_steps_per_s"] is None


def test_a_run_stopped_after_two_points_keeps_both(tmp_path, monkeypatch):
    calls = []

    def measure(algo, name, backend, overrides, seeds, updates):
        calls.append(seeds)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the time limit of a lent GPU, say
        return _fake_point(seeds, overrides["num_envs"])

    monkeypatch.setattr(scaling, "measure", measure)
    with pytest.raises(KeyboardInterrupt):
        scaling.main(tmp_path, ["pendulum_swingup"], gpu=False)
    report = json.loads((tmp_path / "scaling.json").read_text())
    assert report["complete"] is False
    assert [p["seeds"] for p in report["ppo"]["pendulum_swingup"]["seeds"]] == [1, 8]
    text = (tmp_path / "scaling.md").read_text()
    assert "**Incomplete**" in text and "| 8 | 100 | 800 | 8,000 |" in text
    assert (tmp_path / "scaling.png").stat().st_size > 0


@pytest.mark.slow
def test_a_finished_run_without_offpolicy_has_every_ppo_point(tmp_path, monkeypatch):
    monkeypatch.setattr(scaling, "measure",
                        lambda a, n, b, o, seeds, u: _fake_point(seeds, o["num_envs"]))  # fmt: skip
    scaling.main(tmp_path, ["pendulum_swingup"], gpu=False, offpolicy=False)
    report = json.loads((tmp_path / "scaling.json").read_text())
    points = report["ppo"]["pendulum_swingup"]
    assert report["complete"] is True and report["offpolicy"] == {}
    assert [p["seeds"] for p in points["seeds"]] == [1, 8, 32, 128]
    assert [p["num_envs"] for p in points["envs"]] == [100, 400, 1600]
    text = (tmp_path / "scaling.md").read_text()
    assert "Incomplete" not in text and "TD3 / SAC" not in text
    assert "--no-offpolicy" in report["command"]


def test_gpu_points_measure_the_goals_ends_first_and_tables_sort_them(tmp_path, monkeypatch):
    calls = []

    def measure(algo, name, backend, overrides, seeds, updates):
        calls.append((seeds, overrides["num_envs"]))
        return _fake_point(seeds, overrides["num_envs"])

    monkeypatch.setattr(scaling, "measure", measure)
    scaling.main(tmp_path, ["brax:ant"], gpu=True, offpolicy=False)
    assert calls[:2] == [(1, 128), (256, 128)]
    text = (tmp_path / "scaling.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "| 128 |" in line]
    assert [int(r.split("|")[1]) for r in rows[:5]] == [1, 8, 32, 128, 256]
    assert "| 256 | 128 | 32,768 | 256,000 | 2,560.0 | 256.00 |" in text  # vs the 1-seed base
