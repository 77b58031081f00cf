"""Names from outside rlx: ``package.module:ATTR``, `register_algorithm` / `register_env`,
installed entry points, plans built from objects, artifacts that name outside code, and the
committed results' plan hashes (which must not move when the code that names things does)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import textwrap
import uuid
from pathlib import Path

import jax
import numpy as np
import pytest
from rlx.algos import ppo
from rlx.envs.pendulum import PendulumSwingup

import rlx
from rlx import algorithm, envs, runner, sweep
from rlx.cli import main
from rlx.data import recipes
from rlx.data.assets import Asset
from rlx.errors import RlxError
from rlx.runner.plan import data_hash, hash_data

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT = ROOT / "tests" / "data" / "ppo_pendulum_swingup"

OUTSIDE = '''
"""An algorithm and environments written outside rlx."""
from rlx.algos import ppo
from rlx.envs.pendulum import PendulumSwingup

ALGO = ppo.ALGORITHM.variant("outside_ppo", "PPO defined outside rlx.")
NUMBER = 3


class SmallPendulum(PendulumSwingup):
    """A pendulum defined outside rlx."""


class NotAnEnv:
    """A class that is no Env."""


def make_env(**kwargs):
    """Builds a SmallPendulum."""
    return SmallPendulum(**kwargs)


def not_env(**kwargs):
    return 3


def a_function():
    return None
'''


def _write_module(directory: Path) -> str:
    """Writes the outside module into `directory` under a fresh name; returns the name."""
    name = f"rlx_outside_{uuid.uuid4().hex[:8]}"
    (directory / f"{name}.py").write_text(OUTSIDE)
    return name


@pytest.fixture
def registries(monkeypatch):
    """Empty registries for the test (what it registers is gone afterwards)."""
    monkeypatch.setattr(algorithm, "REGISTERED", {})
    monkeypatch.setattr(envs, "REGISTERED", {})


@pytest.fixture
def outside(tmp_path, monkeypatch, registries):
    """The outside module, importable from a directory on sys.path; yields its name."""
    code = tmp_path / "code"
    code.mkdir()
    name = _write_module(code)
    monkeypatch.syspath_prepend(str(code))
    yield name
    sys.modules.pop(name, None)


def test_module_attr_names_resolve(outside):
    mod = importlib.import_module(outside)
    assert algorithm.get_algorithm(f"{outside}:ALGO") is mod.ALGO
    assert rlx.get_algorithm(mod.ALGO) is mod.ALGO
    assert algorithm.import_path(mod.ALGO) == f"{outside}:ALGO"
    assert algorithm.import_path(ppo.ALGORITHM) == "rlx.algos.ppo:ALGORITHM"
    for attr in ("SmallPendulum", "make_env"):
        envs.check_name(f"{outside}:{attr}")
        assert isinstance(envs.make(f"{outside}:{attr}", g=9.0), mod.SmallPendulum)


def test_module_attr_imports_from_the_working_directory(tmp_path, monkeypatch):
    name = _write_module(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    monkeypatch.chdir(tmp_path)
    try:
        assert algorithm.get_algorithm(f"{name}:ALGO").name == "outside_ppo"
        assert isinstance(envs.make(f"{name}:SmallPendulum"), PendulumSwingup)
    finally:
        sys.modules.pop(name, None)


def test_register_and_clashes(outside):
    mod = importlib.import_module(outside)
    mine = rlx.register_algorithm(mod.ALGO)
    assert algorithm.get_algorithm("outside_ppo") is mine
    assert algorithm.names()["outside_ppo"] == "PPO defined outside rlx."
    with pytest.raises(RlxError, match="'ppo' is a built-in"):
        rlx.register_algorithm(ppo.ALGORITHM.variant("ppo", "again"))
    other = mod.ALGO.variant("outside_ppo", "another record")
    with pytest.raises(RlxError, match="already registered"):
        rlx.register_algorithm(other)
    assert rlx.register_algorithm(other, replace=True) is algorithm.get_algorithm("outside_ppo")

    rlx.register_env("small_pendulum", mod.SmallPendulum)
    assert isinstance(envs.make("small_pendulum"), mod.SmallPendulum)
    assert envs.names()["small_pendulum"] == "A pendulum defined outside rlx."
    for taken in ("pendulum_swingup", "brax:ant", "brax:mine", "playground:CartpoleBalance"):
        with pytest.raises(RlxError, match="built-in environment"):
            rlx.register_env(taken, mod.SmallPendulum)
    with pytest.raises(RlxError, match="already registered"):
        rlx.register_env("small_pendulum", mod.make_env)
    rlx.register_env("small_pendulum", mod.make_env, "by factory", replace=True)
    assert envs.names()["small_pendulum"] == "by factory"


def _dist(site: Path, entry_points: str) -> None:
    """An installed distribution `site`/rlx_demo_plugin-0.1.dist-info with `entry_points`."""
    info = site / "rlx_demo_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rlx-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def test_entry_points_are_listed_and_resolve(outside, tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    _dist(site, f"""
        [rlx.algorithms]
        plug_ppo = {outside}:ALGO
        plug_broken = no_such_module_rlx_test:ALGO

        [rlx.envs]
        plug_pendulum = {outside}:SmallPendulum
        """)  # fmt: skip
    monkeypatch.syspath_prepend(str(site))
    mod = importlib.import_module(outside)
    assert algorithm.names()["plug_ppo"] == "PPO defined outside rlx."
    assert algorithm.names()["plug_broken"].startswith("failed to load: ")
    assert algorithm.get_algorithm("plug_ppo") is mod.ALGO
    assert algorithm.name_of(mod.ALGO) == f"{outside}:ALGO"  # its name is not 'plug_ppo'
    with pytest.raises(RlxError, match="no_such_module_rlx_test"):
        algorithm.get_algorithm("plug_broken")
    assert envs.names()["plug_pendulum"] == "A pendulum defined outside rlx."
    assert isinstance(envs.make("plug_pendulum"), mod.SmallPendulum)

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    outside_part = out[out.index("Algorithms from outside rlx") :]
    assert "plug_ppo" in outside_part and "failed to load" in outside_part
    assert "plug_pendulum" in out[out.index("Environments from outside rlx") :]
    assert main(["list", f"{outside}:ALGO"]) == 0
    assert capsys.readouterr().out.startswith("outside_ppo: PPO defined outside rlx.")


def _bad_algorithms(mod: str) -> list[tuple[str, str]]:
    return [
        ("no_such_module_rlx_test:ALGO", "module 'no_such_module_rlx_test' could not be imported"),
        (f"{mod}:MISSING", f"module '{mod}' has no attribute 'MISSING'"),
        (f"{mod}:a_function", "is a function, not an rlx Algorithm record"),
        (f"{mod}:NUMBER", "is an int, not an rlx Algorithm record"),
        ("not_a_name_rlx_test", "unknown algorithm 'not_a_name_rlx_test'"),
    ]


def _bad_envs(mod: str) -> list[tuple[str, str]]:
    return [
        ("no_such_module_rlx_test:Env", "module 'no_such_module_rlx_test' could not be imported"),
        (f"{mod}:Missing", f"module '{mod}' has no attribute 'Missing'"),
        (f"{mod}:ALGO", "is an Algorithm, not a brax.envs.base.Env class"),
        (f"{mod}:NotAnEnv", "is a class, not a brax.envs.base.Env class"),
        (f"{mod}:not_env", "built an int, not a brax.envs.base.Env"),
        ("registered_not_env", "built an int, not a brax.envs.base.Env"),
    ]


def test_bad_names_are_one_error_line(outside, tmp_path, capsys):
    mod = importlib.import_module(outside)
    rlx.register_env("registered_not_env", mod.not_env)
    for name, expected in _bad_algorithms(outside):
        with pytest.raises(RlxError, match=r"\A[^\n]*\Z") as err:
            algorithm.get_algorithm(name)
        assert expected in str(err.value)
    for name, expected in _bad_envs(outside):
        with pytest.raises(RlxError, match=r"\A[^\n]*\Z") as err:
            envs.make(name)
        assert expected in str(err.value)
    for flag, cases in (("--algo", _bad_algorithms(outside)), ("--env", _bad_envs(outside))):
        for name, expected in cases:
            names = {"--algo": "ppo", "--env": "pendulum_swingup", flag: name}
            out = tmp_path / "runs" / "out"
            argv = ["train", "--algo", names["--algo"], "--env", names["--env"], "--out", str(out)]
            assert main(argv) == 2, name
            captured = capsys.readouterr()
            assert captured.err.startswith("rlx: error: ") and captured.err.count("\n") == 1
            assert expected in captured.err
            assert not (tmp_path / "runs").exists()


def test_plan_from_objects_equals_plan_from_names(outside):
    mod = importlib.import_module(outside)
    by_name = runner.plan(f"{outside}:ALGO", f"{outside}:SmallPendulum", env_kwargs={"g": 9.0})
    by_object = runner.plan(mod.ALGO, mod.SmallPendulum, env_kwargs={"g": 9.0})
    assert by_object == by_name and runner.plan_hash(by_object) == runner.plan_hash(by_name)
    assert (by_object.algo, by_object.env) == (f"{outside}:ALGO", f"{outside}:SmallPendulum")
    assert by_object.algorithm is mod.ALGO and isinstance(by_object.make_env(), mod.SmallPendulum)
    builtin = runner.plan("ppo", "pendulum_swingup")
    for env in (PendulumSwingup, PendulumSwingup()):
        same = runner.plan(ppo.ALGORITHM, env)
        assert (same.algo, same.env) == ("ppo", "pendulum_swingup")
        assert runner.plan_hash(same) == runner.plan_hash(builtin)

    class LocalPendulum(PendulumSwingup):  # not importable: the plan holds the class itself
        pass

    local = runner.plan(mod.ALGO.variant("local_ppo", "made here"), LocalPendulum)
    assert (local.algo, local.env) == ("local_ppo", "LocalPendulum")
    assert isinstance(local.make_env(), LocalPendulum)


def test_sweep_file_takes_module_attr_names(outside, tmp_path):
    path = tmp_path / "outside.toml"
    path.write_text(textwrap.dedent(f"""
        name = "outside"
        algorithms = ["{outside}:ALGO"]
        environments = ["{outside}:SmallPendulum"]
        seeds = 2
        total_steps = 6000
        [settings."{outside}:ALGO"]
        num_envs = 20
        [environment."{outside}:SmallPendulum"]
        g = 9.0
        """))  # fmt: skip
    (cell,) = sweep.load(path).cells
    assert cell.plan.algorithm is importlib.import_module(outside).ALGO
    assert cell.plan.base_config.num_envs == 20 and cell.plan.env_kwargs == {"g": 9.0}
    path.write_text(path.read_text().replace(":SmallPendulum", ":NotAnEnv", 1))
    with pytest.raises(RlxError, match=f"^{path}:4: environment .*is a class, not a brax"):
        sweep.load(path)


def _zero_state(rp: runner.RunPlan):
    """A batch of one zero training state of `rp` (shapes only: nothing is compiled)."""
    from rlx import config as cfg

    env, config = rp.make_env(), cfg.as_leaves(rp.base_config)
    shapes = jax.eval_shape(lambda k: rp.algorithm.init(k, env, config, None),
                            jax.random.PRNGKey(0))  # fmt: skip
    return jax.tree.map(lambda s: np.zeros((1, *s.shape), s.dtype), shapes)


def test_artifact_of_outside_code_loads_by_its_import_path(outside, tmp_path, capsys):
    from rlx import policy

    mod = importlib.import_module(outside)
    rp = runner.plan(mod.ALGO, mod.SmallPendulum)
    (written,) = policy.export_runs(rp, [0], _zero_state(rp), {}, lambda i: tmp_path / "art")
    meta = json.loads((written / "policy.json").read_text())
    assert (meta["algorithm"], meta["env"]) == (f"{outside}:ALGO", f"{outside}:SmallPendulum")
    artifact = policy.load_artifact(written)
    assert isinstance(artifact.env, mod.SmallPendulum)
    assert rlx.load_policy(written)(np.zeros(3, np.float32), jax.random.PRNGKey(0), True).shape == (
        1,
    )

    meta["algorithm"] = "nowhere_ppo"  # a record made in __main__ is recorded by its name
    (written / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(RlxError, match=r"register it first .*package\.module:ATTR"):
        rlx.load_policy(written)
    assert main(["eval", str(written)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_committed_policy_artifact_loads_and_acts():
    """tests/data/ppo_pendulum_swingup was made by tests/data/make_policy.sh."""
    act = rlx.load_policy(ARTIFACT)
    obs = jax.numpy.zeros((5, 3))
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    actions = jax.jit(jax.vmap(lambda o, k: act(o, k, True)))(obs, keys)
    assert actions.shape == (5, 1) and bool(np.all(np.isfinite(actions)))
    assert bool(np.all(np.abs(actions) <= 1.0))


ADDED_LATER = {
    "warmup_baseline_twice": (False, "residual TD3, 7749eff"),
    "selective_mask": ("executed", "agency TD3, 7749eff"),
    "target_kl": (0.0, "sft_ppo, 2ebcf7a"),
}
"""Config fields added after some committed results were made, with the default that
reproduces the earlier behaviour: a record that lacks such a field (and only such fields) is
compared with the field left out of the hash."""


def _placeholder_assets(specs, paths, env, config, owner=""):
    return {name: Asset(name, str(path), "placeholder") for name, path in paths.items()}


def _recorded(rp: runner.RunPlan, record: dict) -> runner.RunPlan:
    """`rp` with the asset identities its committed record holds."""
    held = {n: Asset(n, a["path"], a["sha256"]) for n, a in record.get("assets", {}).items()}
    return dataclasses.replace(rp, assets=held) if rp.assets else rp


def _hash_as_recorded(rp: runner.RunPlan, record: dict) -> str:
    """The plan hash, leaving out the `ADDED_LATER` fields the record lacks (at their
    earlier default; any other difference stays and makes the hashes differ)."""
    data = hash_data(rp)
    for field, (default, _) in ADDED_LATER.items():
        if field not in record["config"] and data["config"].get(field) == default:
            del data["config"][field]
    return data_hash(data)


def test_committed_sweeps_plan_hashes_are_unchanged(monkeypatch):
    """Every results/<name>/sweep.json's cells: the plan of sweeps/<name>.toml (with the
    recorded --quick flag) has the recorded hash. Assets made by a recipe are not built here:
    each cell's asset identity (path and content hash) is taken from its committed
    record.json, and everything else about the plan is recomputed. Records made before a
    config field existed are compared without it (`ADDED_LATER`). Cells of a partly run sweep
    (e.g. results/trl: the giant maze's cells were not run on the CPU) have no record."""
    monkeypatch.setattr(recipes, "cached", lambda name, options=None: Path("recipe") / name)
    monkeypatch.setattr(importlib.import_module("rlx.runner.plan"), "resolve_assets",
                        _placeholder_assets)  # fmt: skip
    checked = 0
    for meta_path in sorted(ROOT.glob("results/*/sweep.json")):
        meta = json.loads(meta_path.read_text())
        loaded = sweep.load(ROOT / "sweeps" / f"{meta_path.parent.name}.toml", quick=meta["quick"])
        assert {c.key for c in loaded.cells} == set(meta["cells"]), meta_path
        for cell in loaded.cells:
            recorded = meta["cells"][cell.key]
            record_path = meta_path.parent / "cells" / recorded["dir"] / "record.json"
            if not record_path.is_file():  # a cell of a partly run sweep (its table says so)
                continue
            record = json.loads(record_path.read_text())
            assert record["config_hash"] == recorded["hash"], record_path
            got = _hash_as_recorded(_recorded(cell.plan, record), record)
            assert got == recorded["hash"], f"{meta_path.parent.name}: {cell.key}"
            checked += 1
    assert checked >= 100
