"""The one training path (`rlx.runner.session.train_to_dir`): ``rlx.train(out=DIR)`` writes what
``rlx train --out DIR`` writes, an interrupted run resumes through the one resume decision,
and every sweep cell trains through it (a partial curves.csv while it runs, wandb logs,
``--dry-run``, a one-line error for an empty wandb project)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import pytest
from test_sweep import TINY as TINY_SWEEP

import rlx
from rlx import cli, runner
from rlx.errors import RlxError
from rlx.provenance import provenance
from rlx.runner import session

CACHE = os.environ.get(
    "RLX_TEST_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "jax")
)
# 2 seeds, 6 updates of 64 env steps, 3 chunks: evaluation points at 0, 128, 256, 384;
# checkpoint n is taken after chunk n.
TINY = {"total_steps": 384, "num_envs": 8, "unroll_length": 8, "num_minibatches": 2,
        "num_epochs": 2, "policy_hidden": (16,), "value_hidden": (16,)}  # fmt: skip
PLAN = {"seeds": 2, "overrides": TINY, "num_evals": 3, "eval_episodes": 2}
TRAIN = [
    "train", "--algo", "ppo", "--env", "pendulum_swingup", "--seeds", "2", "--total-steps",
    "384", "--set", "num_envs=8", "--set", "unroll_length=8", "--set", "num_minibatches=2",
    "--set", "num_epochs=2", "--set", "policy_hidden=16", "--set", "value_hidden=16",
    "--num-evals", "3", "--eval-episodes", "2", "--quiet",
]  # fmt: skip
SWEEP = TINY_SWEEP  # one tiny PPO sweep file, shared with test_sweep
CELL = "ppo__pendulum_swingup"


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def _points(path: Path) -> dict[str, list[int]]:
    """{run: [env steps of every row]} of a curves.csv."""
    points: dict[str, list[int]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            points.setdefault(row["run"], []).append(int(row["env_steps"]))
    return points


def _cli(argv: list[str]) -> int:
    """`rlx ARGV` in this process, with the test cache (the command changes jax's config)."""
    min_seconds = jax.config.jax_persistent_cache_min_compile_time_secs
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RLX_COMPILATION_CACHE", CACHE)
            return cli.main(argv)
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_seconds)


def _fixed_code() -> dict:
    """A provenance whose code identity stays the same while the working tree changes."""
    return {**provenance(), "git": "0123456789ab", "diff_sha256": None}


@pytest.fixture(scope="module")
def by_cli(tmp_path_factory) -> Path:
    """`rlx train --out DIR --export DIR/../policies`: the run directory."""
    root = tmp_path_factory.mktemp("cli")
    assert _cli([*TRAIN, "--out", str(root / "run"), "--export", str(root / "policies")]) == 0
    return root / "run"


def test_python_train_into_a_directory_writes_what_rlx_train_writes(by_cli, tmp_path):
    result = rlx.train("ppo", "pendulum_swingup", **PLAN, progress=False, out=tmp_path / "run",
                       export=tmp_path / "policies")  # fmt: skip
    assert result.runs == 2 and jax.tree.leaves(result.state)[0].shape[0] == 2
    assert _listing(tmp_path / "run") == _listing(by_cli)
    for i in (0, 1):  # the same artifacts (orbax names its files at random)
        mine, theirs = (json.loads((d / f"run-{i}" / "policy.json").read_text())
                        for d in (tmp_path / "policies", by_cli.parent / "policies"))  # fmt: skip
        assert mine["run"] == theirs["run"] and mine["params"] == theirs["params"]
    for name in ("curves.csv", "final.csv"):
        assert (tmp_path / "run" / name).read_text() == (by_cli / name).read_text(), name
    assert not session.partial_dir(tmp_path / "run").exists()


_KILLED = """
import sys
import rlx
from rlx.provenance import provenance

rlx.configure(compilation_cache=sys.argv[2])
started = {**provenance(), "git": "0123456789ab", "diff_sha256": None}
rlx.train("ppo", "pendulum_swingup", seeds=2, num_evals=3, eval_episodes=2, progress=False,
          overrides=%r, out=sys.argv[1], started=started)
"""


@pytest.mark.slow
def test_an_interrupted_run_resumes_through_the_one_resume_decision(by_cli, tmp_path):
    out = tmp_path / "run"
    partial = session.partial_dir(out)
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED % (TINY,), str(out), CACHE],
        env={**os.environ, "RLX_TEST_KILL_AT_CHECKPOINT": "2"}, capture_output=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists()
    assert _points(partial / "curves.csv") == {"0": [0, 128, 256], "1": [0, 128, 256]}
    # Both deciders (the session before anything runs, the runner's store) refuse another plan
    # with the same rule and words.
    other = runner.plan("ppo", "pendulum_swingup", **{**PLAN, "seeds": 3})
    problem = r"holds an unfinished run of a different configuration \(plan"
    with pytest.raises(RlxError, match=problem):
        session.train_to_dir(other, out, progress=False, started=_fixed_code())
    with pytest.raises(RlxError, match=problem):
        runner.run(other, progress=False, checkpoint_dir=partial / "checkpoints")
    assert session.resume_point(other, out, _fixed_code(), overwrite=True) is None  # discarded
    result = rlx.train("ppo", "pendulum_swingup", **PLAN, progress=False, out=out,
                       started=_fixed_code())  # fmt: skip
    assert result.record["execution"]["resumed"] is True
    assert (out / "curves.csv").read_text() == (by_cli / "curves.csv").read_text()
    assert not partial.exists()


def test_sweep_dry_run_prints_each_cell_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(
        SWEEP.replace('["pendulum_swingup"]', '["pendulum_swingup", "cartpole_swingup"]')
    )
    before = _listing(tmp_path)
    assert _cli(["sweep", str(path), "--out", str(tmp_path / "res"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert _listing(tmp_path) == before
    from rlx import sweep

    for cell in sweep.load(path).cells:
        assert f"[sweep] {cell.key}:\nplan {runner.plan_hash(cell.plan)}: ppo on {cell.env}" in text
    assert text.count("batch: 2 runs per compiled program (1 slice) x 64 env steps") == 2
    assert text.count("memory: training state ") == 2


@pytest.mark.parametrize("command", ["sweep", "train"])
def test_an_empty_wandb_project_is_one_error_line(tmp_path, capsys, command):
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)
    args = [str(path)] if command == "sweep" else TRAIN[1:]
    before = _listing(tmp_path)
    assert _cli([command, *args, "--out", str(tmp_path / "res"), "--wandb", ""]) == 2
    err = capsys.readouterr().err
    assert err == "rlx: error: --wandb needs a project name.\n"
    assert _listing(tmp_path) == before


def test_a_sweep_cells_partial_curves_exist_while_it_runs(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)
    out = tmp_path / "res"
    killed = subprocess.run(
        [sys.executable, "-m", "rlx.cli", "sweep", str(path), "--out", str(out), "--quiet"],
        env={**os.environ, "RLX_COMPILATION_CACHE": CACHE, "RLX_TEST_KILL_AT_CHECKPOINT": "2"},
        capture_output=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    partial = out / "cells" / f"{CELL}.partial"
    assert _points(partial / "curves.csv") == {"0": [0, 128, 256], "1": [0, 128, 256]}
    assert (partial / "checkpoints").is_dir() and not (out / "cells" / CELL).exists()


def test_sweep_logs_each_cell_to_wandb(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)
    out = tmp_path / "res"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        mp.delenv("WANDB_DIR", raising=False)
        argv = ["sweep", str(path), "--out", str(out), "--quiet", "--wandb", "rlx-test"]
        assert _cli(argv) == 0
    (run_file,) = (out / "cells" / CELL / "wandb").glob("offline-run-*/run-*.wandb")
    data = run_file.read_bytes()
    for key in (b"seed_0/eval/return", b"seed_1/eval/return", b"mean/eval/return"):
        assert key in data, key
    assert (out / "cells" / CELL / "curves.csv").is_file()
