"""Sweep files: validation of every kind of bad input, resume after kill -9 with identical
numbers, refusal of a results directory of another configuration, per-run NaN failures, and
table statistics against hand-computed values."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from rlx import cli, files, sweep
from rlx.errors import RlxError
from rlx.report import table

TINY = """
name = "tiny"
algorithms = ["ppo"]
environments = ["pendulum_swingup"]
seeds = 2
total_steps = 384
num_evals = 3
eval_episodes = 2

[settings.ppo]
num_envs = 8
unroll_length = 8
num_minibatches = 2
num_epochs = 2
policy_hidden = [16]
value_hidden = [16]
"""


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace('name = "tiny"', 'name = "tiny'), "TOML syntax error"),
        (lambda t: "seedz = 3\n" + t, ":1: unknown top-level key 'seedz'"),
        (
            lambda t: t.replace("seeds = 2", 'seeds = "two"'),
            ":5: seeds must be int or a list of ints, got 'two'",
        ),
        (lambda t: t.replace("seeds = 2", "seeds = 0"), "seeds must be a positive integer, got 0"),
        (lambda t: t.replace("seeds = 2", "seeds = []"), ":5: seeds must be a positive integer or"),
        (lambda t: t.replace("seeds = 2", "seeds = [3, 3]"), ":5: seed 3 is given twice"),
        (lambda t: t.replace("seeds = 2", "seeds = [0, -1]"), ":5: seed -1 is negative"),
        (lambda t: t.replace("seeds = 2", "seeds = [1.5]"), ":5: seed 1.5 is not an integer"),
        (lambda t: t.replace("seeds = 2", 'seeds = ["a"]'), ":5: seed 'a' is not an integer"),
        (
            lambda t: t.replace('algorithms = ["ppo"]', 'algorithms = ["ppoo"]'),
            "unknown algorithm 'ppoo'. Did you mean 'ppo' or 'sft_ppo'?",
        ),
        (
            lambda t: t.replace('algorithms = ["ppo"]', "algorithms = []"),
            "algorithms must be a non-empty list",
        ),
        (
            lambda t: t.replace('"pendulum_swingup"]', '"pendulum"]'),
            "unknown environment 'pendulum'",
        ),
        (
            lambda t: t + "\n[grid.ppo]\ngamma = []\n",
            "grid.ppo.gamma: grid for 'gamma' must be a non-empty list",
        ),
        (
            lambda t: t + "\n[grid.ppo]\ngama = [0.9]\n",
            "unknown ppo setting 'gama'. Did you mean 'gamma'?",
        ),
        (
            lambda t: t + "\n[grid.ppo]\nnum_envs = [8, 16]\n",
            "grid.ppo.num_envs: cannot grid over static field 'num_envs'",
        ),
        (
            lambda t: t.replace("num_epochs = 2", "num_epochs = 2.5"),
            "settings.ppo: bad value 2.5 for 'num_epochs': expected int",
        ),
        (
            lambda t: t.replace("num_epochs = 2", "num_epochs = 0"),
            "num_epochs must be a positive integer, got 0",
        ),
        (
            lambda t: t.replace("total_steps = 384", "total_steps = 400"),
            "total_steps=400 must be a multiple of num_envs*unroll_length=64",
        ),
        (
            lambda t: t + '\n[cell."ppo/cartpole_swingup"]\nnum_envs = 4\n',
            "unknown cell key 'ppo/cartpole_swingup'",
        ),
        (lambda t: t + '\n[reference."ppo/pendulum_swingup"]\nsource = "x"\n', "needs value"),
        (lambda t: t + "\n[table]\nmetrics = []\n", "[table] metrics must be a non-empty list"),
        (
            lambda t: t + "\n[environment.pendulum_swingup]\nmass = 2.0\n",
            "bad keyword for environment 'pendulum_swingup'",
        ),
        (lambda t: t + "\n[quick]\nhiden = [8]\n", "unknown [quick] setting 'hiden'"),
        (lambda t: t + "\n[quick.td3]\nhidden = [8]\n", "unknown [quick.<algo>] table 'td3'"),
        (lambda t: t + "\n[quick.ppo]\nhidden = [8]\n", "quick.ppo"),
        (lambda t: t + "\n[plot]\nmark_fraction = 1.5\n", "mark_fraction must be in (0, 1]"),
        (lambda t: t + "\n[plot]\nmetrics = []\n", "[plot] metrics must be a non-empty list"),
        (lambda t: t + "\n[plot]\nmarker = 0.5\n", "unknown key 'marker' in [plot]"),
    ],
)
def test_bad_sweep_files_are_rejected_before_running(tmp_path, capsys, edit, expected):
    path = _write(tmp_path, edit(TINY))
    with pytest.raises(RlxError) as info:
        sweep.load(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)
    # and through the CLI: one line, exit 2, nothing written
    out = tmp_path / "results"
    assert cli.main(["sweep", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlx: error: ") and err.count("\n") == 1
    assert not out.exists()


def test_seeds_as_a_count_or_a_list(tmp_path):
    assert sweep.load(_write(tmp_path, TINY)).cells[0].plan.seeds == (0, 1)
    listed = sweep.load(_write(tmp_path, TINY.replace("seeds = 2", "seeds = [7, 2, 11]")))
    assert listed.cells[0].plan.seeds == (7, 2, 11)


def test_missing_file(tmp_path):
    with pytest.raises(RlxError, match="does not exist"):
        sweep.load(tmp_path / "nope.toml")


def _final_returns(out: Path) -> list[float]:
    rec = json.loads((out / "cells" / "ppo__pendulum_swingup" / "record.json").read_text())
    return [r["curve"]["eval/return"] for r in rec["runs"]]


def _sweep_cmd(path: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "rlx.cli", "sweep", str(path), "--out", str(out), "--quiet"]


# TINY's pendulum cell and a cartpole cell: two cells for the shards.
TWO = TINY.replace('["pendulum_swingup"]', '["pendulum_swingup", "cartpole_swingup"]')


def _session_cache() -> dict[str, str]:
    """The environment of an rlx command run by a test: the test session's compilation cache,
    so a program compiled once (in this process or in another command) is not compiled again."""
    return dict(os.environ, RLX_COMPILATION_CACHE=str(jax.config.jax_compilation_cache_dir))


def _sweep_here(path: Path, out: Path) -> str:
    """`rlx sweep path --out out --quiet` in this process; returns what it printed."""
    buffer = io.StringIO()
    min_seconds = jax.config.jax_persistent_cache_min_compile_time_secs  # the command sets it
    try:
        with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(buffer):
            mp.setenv("RLX_COMPILATION_CACHE", _session_cache()["RLX_COMPILATION_CACHE"])
            assert cli.main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_seconds)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """TWO run straight through by one uninterrupted process (this one): the reference of the
    resumed and the sharded runs."""
    tmp = tmp_path_factory.mktemp("single")
    _sweep_here(_write(tmp, TWO), tmp / "out")
    return tmp / "out"


@pytest.mark.slow
def test_resume_after_kill_gives_identical_numbers(tmp_path, single):
    path = _write(tmp_path, TINY)
    resumed = tmp_path / "resumed"
    killed = subprocess.run(
        _sweep_cmd(path, resumed), env={**_session_cache(), "RLX_TEST_KILL_AT_CHECKPOINT": "2"},
        capture_output=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    assert not (resumed / "cells" / "ppo__pendulum_swingup" / "record.json").exists()
    assert (resumed / "cells" / "ppo__pendulum_swingup.partial" / "checkpoints").is_dir()
    again = subprocess.run(
        _sweep_cmd(path, resumed), env=_session_cache(), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    np.testing.assert_array_equal(_final_returns(resumed), _final_returns(single))
    rec = json.loads((resumed / "cells" / "ppo__pendulum_swingup" / "record.json").read_text())
    assert rec["execution"]["resumed"] is True
    assert not (resumed / "cells" / "ppo__pendulum_swingup.partial").exists()
    for name in (
        "table.md",
        "table.csv",
        "table.tex",
        "learning_curves.png",
        "performance_profile.png",
    ):
        assert (resumed / name).is_file()

    # A finished sweep started again skips its cells.
    assert "finished earlier, skipped" in _sweep_here(path, resumed)


def test_results_of_another_configuration_are_refused(tmp_path, capsys):
    out = tmp_path / "res"
    first = sweep.load(_write(tmp_path, TINY))
    sweep.prepare_dir(first, out, new=False)
    (out / "marker").write_text("old")
    changed = sweep.load(_write(tmp_path, TINY.replace("seeds = 2", "seeds = 3"), "b.toml"))
    with pytest.raises(RlxError, match=r"different configuration .* pass --new"):
        sweep.prepare_dir(changed, out, new=False)
    sweep.prepare_dir(changed, out, new=True)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("res.replaced-")]
    assert len(aside) == 1 and (aside[0] / "marker").read_text() == "old"  # nothing lost
    assert not (out / "marker").exists()


def test_a_shard_starting_while_another_writes_sweep_json_is_not_refused(tmp_path):
    """Two shards started together: the first has made the directory and is writing its
    sweep.json (a temporary file not yet renamed); the second must take the directory as
    new, not as another configuration's. A directory with anything else in it is refused."""
    out = tmp_path / "res"
    out.mkdir()
    files.temp_path(out / "sweep.json").write_text('{"digest": "half-writ')  # another shard's
    tiny = sweep.load(_write(tmp_path, TINY))
    sweep.prepare_dir(tiny, out, new=False)
    assert json.loads((out / "sweep.json").read_text())["digest"] == tiny.digest()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.json").write_text("{}")
    with pytest.raises(RlxError, match="not a sweep directory"):
        sweep.prepare_dir(tiny, other, new=False)


@pytest.mark.slow
def test_nan_run_fails_alone_and_is_marked_and_tensorboard_logs(tmp_path):
    text = TINY + "\n[grid.ppo]\nreward_scaling = [0.1, 1e38]\n"
    sw = sweep.load(_write(tmp_path, text))
    out = tmp_path / "res"
    sweep.run_sweep(sw, out, progress=False, tensorboard=True)
    logdir = out / "cells" / "ppo__pendulum_swingup" / "tensorboard"  # per seed and mean
    for run in (
        "reward_scaling=0.1/mean",
        "reward_scaling=0.1/seed_1",
        "reward_scaling=1e+38/mean",
    ):
        assert list((logdir / run).glob("events.out.tfevents.*")), run
    rec = json.loads((out / "cells" / "ppo__pendulum_swingup" / "record.json").read_text())
    failed = [r for r in rec["runs"] if "failed" in r]
    ok = [r for r in rec["runs"] if "failed" not in r]
    assert {r["grid_point"]["reward_scaling"] for r in failed} == {1e38}
    assert len(ok) == 2 and all(np.isfinite(r["curve"]["eval/return"]).all() for r in ok)
    assert all(r["failed"]["steps"] > 0 for r in failed)
    table.write_tables(out)
    md = (out / "table.md").read_text()
    assert "0 (2 failed)" in md and "Failed runs" in md


def test_table_statistics_against_hand_computed_values(tmp_path):
    finals = [1.0, 2.0, 3.0, 4.0, 100.0]
    runs = [
        {"run": i, "seed": i, "grid_point": {}, "final": {"eval/return": v},
         "curve": {"env_steps": [0, 10], "eval/return": [0.0, v]}}
        for i, v in enumerate(finals)
    ]  # fmt: skip
    write_one_cell_sweep(tmp_path, runs, {"total_steps_per_run": 10, "num_evals": 1,
                                          "eval_episodes": 1},
                         {"references": {"ppo/pendulum_swingup": {"value": -150, "source": "paper"}}})  # fmt: skip
    (row,) = table.rows(*table.load_records(tmp_path))
    s = row["eval/return"]
    assert s["mean"] == pytest.approx(22.0)
    assert s["std"] == pytest.approx(np.sqrt(np.mean((np.array(finals) - 22.0) ** 2)))
    assert s["iqm"] == pytest.approx(3.0)  # 5 runs: drop one from each end, mean of 2, 3, 4
    assert s["ci"][0] <= 3.0 <= s["ci"][1] and s["ci"][0] >= 1.0 and s["ci"][1] <= 100.0
    md = table.markdown(*table.load_records(tmp_path))
    assert "| ppo | pendulum_swingup | default | 5 | 10 | 22.0 ± 39.0 | 3.0 [" in md
    assert "test cpu" in md and "-150" not in md.split("## Published figures")[0]
    assert "| ppo | pendulum_swingup | return | -150 | paper |" in md  # apart, not in our row
    assert "\\toprule" in table.latex(*table.load_records(tmp_path))
    assert (
        table.csv_text(*table.load_records(tmp_path))
        .splitlines()[1]
        .startswith("ppo,pendulum_swingup,default,5,0,10,22.0")
    )


def test_quick_overrides_apply_to_every_algorithm_that_has_the_field(tmp_path):
    text = TINY.replace('algorithms = ["ppo"]', 'algorithms = ["ppo", "td3"]').replace(
        "eval_episodes = 2\n", "eval_episodes = 2\nquick_total_steps = 1_152\n"
    )
    text += "\n[settings.td3]\nnum_envs = 8\nunroll_length = 8\n"
    text += "\n[quick]\nhidden = [8]\nbatch_size = 32\nnum_epochs = 1\n"
    full = sweep.load(_write(tmp_path, text))
    quick = sweep.load(_write(tmp_path, text), quick=True)
    ppo_q, td3_q = (c.plan.base_config for c in quick.cells)
    assert td3_q.hidden == (8,) and td3_q.batch_size == 32 and td3_q.total_steps == 1_152
    assert ppo_q.num_epochs == 1 and ppo_q.total_steps == 1_152  # ppo has no hidden/batch_size
    assert full.cells[1].plan.base_config.hidden == (256, 256)
    # [quick.<algo>] applies to that algorithm only, after [quick] and quick_total_steps
    text += "\n[quick.td3]\nbatch_size = 16\ntotal_steps = 2_304\n"
    ppo_q, td3_q = (c.plan.base_config for c in sweep.load(_write(tmp_path, text), True).cells)
    assert td3_q.batch_size == 16 and td3_q.total_steps == 2_304 and td3_q.hidden == (8,)
    assert ppo_q.total_steps == 1_152


def test_metric_at_an_evaluation_point_and_rate_formatting():
    run = {"final": {"a": 0.5}, "curve": {"a": [0.0, 0.25, 0.5]}}
    assert table.run_value(run, "a") == 0.5
    assert table.run_value(run, "a@1") == 0.25
    assert np.isnan(table.run_value(run, "a@7")) and np.isnan(table.run_value(run, "b@1"))
    # labels and percentages come from the rules the env and the algorithm declare
    rec = {"algo": "ppo", "env": "treasure_robot", "env_kwargs": {}}
    rules = table.metric_rules([rec])
    assert table.metric_label("eval/goal_reached@1", rules) == "goal rate at eval 1"
    assert table.metric_label("eval/treasure_collected", rules) == "treasure rate"
    assert table.metric_label("train/episode_combined", rules) == "train combined"
    assert table._num(0.25, "train/episode_goal_reached@1", rules) == "25%"
    assert table._num(0.25, "eval/treasure_collected", rules) == "25%"
    assert table._num(0.25, "eval/combined", rules) == "0.2"
    assert table.metric_label("loss/value", rules) == "loss/value"  # undeclared: its name


def test_checkpoint_round_trip_keeps_zero_size_leaves(tmp_path):
    import jax
    import jax.numpy as jnp

    from rlx.runner.checkpoint import RunCheckpointer

    # MJX states carry zero-size arrays (no actuator activations), which orbax refuses.
    state = {"a": jnp.arange(3.0), "empty": jnp.zeros((2, 0)), "k": jnp.array([7], jnp.int32)}
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)
    ckpt = RunCheckpointer(tmp_path / "ck")
    ckpt.save(0, state, {"note": "x"})
    back = ckpt.restore_state(spec)
    ckpt.close()
    assert back["empty"].shape == (2, 0)
    np.testing.assert_array_equal(back["a"], [0.0, 1.0, 2.0])
    assert int(back["k"][0]) == 7 and back["k"].dtype == jnp.int32


@pytest.mark.slow
def test_finished_cells_of_other_code_are_refused_unless_accepted(tmp_path, capsys):
    two_envs = TINY.replace('["pendulum_swingup"]', '["pendulum_swingup", "cartpole_swingup"]')
    sw = sweep.load(_write(tmp_path, two_envs))
    out = tmp_path / "out"
    sweep.run_sweep(sw, out, progress=False)
    path = out / "cells" / sw.cells[0].dirname / "record.json"
    rec = json.loads(path.read_text())
    rec["provenance"]["git"] = "0123456789ab"
    rec["provenance"]["diff_sha256"] = None
    path.write_text(json.dumps(rec))
    with pytest.raises(
        RlxError, match=r"made by code 0123456789ab, this is .*accept-revision-change"
    ):
        sweep.run_sweep(sw, out, progress=False)
    sweep.run_sweep(sw, out, progress=False, accept_revision_change=True)
    assert "finished earlier, skipped" in capsys.readouterr().out
    header = table.markdown(*table.load_records(out))
    assert "0123456789ab" in header and "(cells from 2 code revisions;" in header


def _rows(table_md: str) -> list[str]:
    """The table's data rows without the per-cell wall-clock and throughput columns."""
    rows = [line for line in table_md.splitlines() if line.startswith("| ppo |")]
    return ["|".join(row.split("|")[:-3]) for row in rows]


@pytest.mark.slow
def test_two_shards_sharing_one_directory_equal_one_process(tmp_path, single):
    """`--shard 0/2` and `--shard 1/2` run as two concurrent processes into one directory (as
    a SLURM array would): each runs its own cell, neither removes the other's checkpoints,
    and the table over both equals a single process's table."""
    path = _write(tmp_path, TWO)
    shared = tmp_path / "shared"
    procs = [
        subprocess.Popen([*_sweep_cmd(path, shared), "--shard", f"{k}/2"], env=_session_cache(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in (0, 1)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    ran = [{line.split(":")[0] for line in out.splitlines() if line.startswith("[sweep]")}
           for out, _ in outputs]  # fmt: skip
    assert ran == [{"[sweep] ppo/pendulum_swingup"}, {"[sweep] ppo/cartpole_swingup"}]
    assert not list((shared / "cells").glob("*.partial"))
    assert cli.main(["table", str(shared)]) == 0  # once the array is done, as the README says
    both = (shared / "table.md").read_text()
    assert "Not finished yet" not in both
    assert _rows(both) == _rows((single / "table.md").read_text()) and len(_rows(both)) == 2


def test_a_table_of_a_partly_finished_sweep_says_what_is_missing(tmp_path):
    sw = sweep.load(_write(tmp_path, TWO))
    out = tmp_path / "out"
    sweep.run_sweep(sw, out, progress=False, shard=sweep.Shard(1, 2))
    text = table.markdown(*table.load_records(out))
    assert "Not finished yet (1 of 2 cells, left out): ppo/pendulum_swingup" in text
    assert len(_rows(text)) == 1


@pytest.mark.parametrize("text", ["3/2", "0/0", "a/b", "2", "-1/2", "1/2/3"])
def test_bad_shards_are_refused(tmp_path, capsys, text):
    out = tmp_path / "out"
    code = cli.main(["sweep", str(_write(tmp_path, TINY)), "--out", str(out), f"--shard={text}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rlx: error: bad --shard") and err.count("\n") == 1
    assert not out.exists()


def write_one_cell_sweep(tmp_path: Path, runs: list, budget: dict, meta_extra: dict) -> Path:
    """A results directory `tmp_path` of one PPO cell holding `runs` (record rows) with
    `budget`, and a sweep.json with the headline eval/return plus `meta_extra`."""
    prov = {"git": "abc", "date": "2026-11-25T00:00:00+00:00", "matmul_precision": "default",
            "versions": {k: "x" for k in ("python", "jax", "flax", "optax", "brax", "mujoco", "mujoco-mjx")},
            "hardware": {"backend": "cpu", "cpu": "test cpu", "cpu_cores": 2, "device_count": 1}}  # fmt: skip
    rec = {"config_hash": "h", "algo": "ppo", "env": "pendulum_swingup", "runs": runs,
           "provenance": prov, "budget": budget, "timing": {"wall_s": 1.0, "env_steps_per_s": 50.0}}  # fmt: skip
    (tmp_path / "cells" / "c").mkdir(parents=True)
    (tmp_path / "cells" / "c" / "record.json").write_text(json.dumps(rec))
    meta = {"name": "t", "cells": {"ppo/pendulum_swingup": {"dir": "c", "hash": "h"}},
            "table_metrics": ["eval/return"], **meta_extra}  # fmt: skip
    (tmp_path / "sweep.json").write_text(json.dumps(meta))
    return tmp_path
