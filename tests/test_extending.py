"""The doors for code written outside rlx, kept open: ``examples/`` (REINFORCE with a value
baseline, ``reinforce:ALGORITHM``, and a 2-D point-reaching env, ``point_env:PointReach``)
trained with ``rlx train``, ``rlx sweep`` and ``rlx.train``, exported, loaded with
``rlx.load_policy`` and evaluated with ``rlx eval``.

Every test runs in a copy of ``examples/`` outside the repository, as the working directory,
so the names resolve only through ``module:ATTR`` with the current directory on ``sys.path``.
One trained run (`trained`: 4 seeds x 64,000 env steps) is shared by the module.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import rlx
from rlx import cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ALGO, ENV = "reinforce:ALGORITHM", "point_env:PointReach"
SEEDS, STEPS = 4, 64_000
MARGIN = 20.0
"""Final minus untrained deterministic evaluation return that every seed must beat. Measured
at this budget (seeds 0-3, 16 episodes of 40 steps): untrained -38.3, -40.4, -43.7, -36.5;
final -8.1, -6.6, -5.6, -5.6; margins +30.2, +33.8, +38.1, +30.9; goal reached 100% on every
seed. With a zero learning rate the return falls instead (seed 0: -38.3 to -50.0)."""
TRAIN = ["--algo", ALGO, "--env", ENV, "--seeds", str(SEEDS), "--total-steps", str(STEPS),
         "--num-evals", "2", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A copy of examples/ outside the repository, the working directory of every test here
    (the examples' modules are forgotten afterwards)."""
    where = tmp_path_factory.mktemp("outside") / "examples"
    shutil.copytree(EXAMPLES, where, ignore=shutil.ignore_patterns("__pycache__"))
    saved_path = list(sys.path)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(where)
        mp.setenv("RLX_COMPILATION_CACHE", str(jax.config.jax_compilation_cache_dir))
        yield where
    sys.path[:] = saved_path
    for name in ("reinforce", "point_env"):
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def trained(outside: Path) -> Path:
    """``rlx train --algo reinforce:ALGORITHM --env point_env:PointReach --export``: the run
    directory (``run/``) and the exported policies (``policies/run-<i>``) beside it."""
    root = outside.parent
    argv = ["train", *TRAIN, "--out", str(root / "run"), "--export", str(root / "policies")]
    assert cli.main(argv) == 0
    return root


def _final_rows(run: Path) -> list[dict]:
    """The runs of a run directory's record."""
    return json.loads((run / "record.json").read_text())["runs"]


@pytest.mark.slow
def test_train_cli_learns(trained: Path) -> None:
    """Every seed's final deterministic evaluation beats its untrained policy's (the curve's
    first point) by MARGIN; the record names the algorithm and env by their import paths."""
    record = json.loads((trained / "run" / "record.json").read_text())
    assert (record["algo"], record["env"]) == (ALGO, ENV)
    assert [row["seed"] for row in record["runs"]] == list(range(SEEDS))
    for row in record["runs"]:
        returns = row["curve"]["eval/return"]
        assert row["curve"]["env_steps"][0] == 0 and len(returns) == 3
        assert returns[-1] - returns[0] > MARGIN, (row["seed"], returns)
        assert row["final"]["eval/goal_reached"] >= 0.5, row["final"]


def test_exported_policy_loads_and_evaluates(trained: Path) -> None:
    """The exported artifact acts through `rlx.load_policy`, and `rlx eval` of it reproduces
    the run's last evaluation (its own seed and episode count)."""
    artifact = trained / "policies" / "run-1"
    act = rlx.load_policy(artifact)
    obs = jax.numpy.zeros((3, 4), jax.numpy.float32)
    action = jax.vmap(lambda o: act(o, jax.random.PRNGKey(0), True))(obs)
    assert action.shape == (3, 2) and bool(np.all(np.abs(np.asarray(action)) <= 1.0))
    out = trained / "eval-1.json"
    assert cli.main(["eval", str(artifact), "--out", str(out)]) == 0
    evaluated = json.loads(out.read_text())["metrics"]
    final = _final_rows(trained / "run")[1]["final"]
    assert evaluated["eval/return"] == pytest.approx(final["eval/return"], rel=1e-4)


def test_python_train_with_objects_matches_cli(trained: Path) -> None:
    """`rlx.train(record, env_object, out=, export=)` writes what ``rlx train --out --export``
    writes, with the same numbers as the CLI run of the same names."""
    import point_env
    import reinforce

    root = trained / "python"
    result = rlx.train(reinforce.ALGORITHM, point_env.PointReach(), seeds=SEEDS,
                       overrides={"total_steps": STEPS}, num_evals=2, progress=False,
                       out=root / "run", export=root / "policies")  # fmt: skip
    assert result.runs == SEEDS
    assert {p.name for p in (root / "run").iterdir()} >= {"record.json", "curves.csv",
                                                          "final.csv", "summary.md"}  # fmt: skip
    assert sorted(p.name for p in (root / "policies").iterdir()) == [
        f"run-{i}" for i in range(SEEDS)
    ]
    ours = [row["final"]["eval/return"] for row in _final_rows(root / "run")]
    cli_run = [row["final"]["eval/return"] for row in _final_rows(trained / "run")]
    np.testing.assert_allclose(ours, cli_run, rtol=1e-5)
    act = result.policy(run=0)
    assert act(jax.numpy.zeros(4), jax.random.PRNGKey(0), True).shape == (2,)


@pytest.mark.slow
def test_sweep_over_outside_names(trained: Path) -> None:
    """``rlx sweep sweep.toml --quick`` runs both algorithms on the outside env and tables
    them; its REINFORCE cell (the test's budget) has the numbers of the `trained` run."""
    out = trained / "sweep"
    assert cli.main(["sweep", "sweep.toml", "--quick", "--out", str(out), "--quiet"]) == 0
    with (out / "table.csv").open() as f:
        rows = {row["algorithm"]: row for row in csv.DictReader(f)}
    assert set(rows) == {ALGO, "ppo"} and rows[ALGO]["seeds"] == str(SEEDS)
    cells = json.loads((out / "sweep.json").read_text())["cells"]
    ours = [row["final"]["eval/return"]
            for row in _final_rows(out / "cells" / cells[f"{ALGO}/{ENV}"]["dir"])]  # fmt: skip
    cli_run = [row["final"]["eval/return"] for row in _final_rows(trained / "run")]
    np.testing.assert_allclose(ours, cli_run, rtol=1e-5, err_msg="sweep.toml's --quick budget")


def test_bad_outside_name_is_one_error(outside: Path, capsys) -> None:
    """A ``module:ATTR`` that names a missing attribute is one error line, exit 2, nothing
    written."""
    out = outside.parent / "bad"
    argv = ["train", "--algo", "reinforce:NOPE", "--env", ENV, "--out", str(out), "--quiet"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlx: error:") and err.count("\n") == 1 and "reinforce:NOPE" in err
    assert not out.exists()
