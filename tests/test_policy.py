"""Policy artifacts: export -> load gives the training state's policy, `rlx eval` reproduces a
run's last evaluation, params are stored by tree path, and bad artifacts are refused."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import rlx
from rlx import cli
from rlx import policy as policy_mod
from rlx.data import datasets
from rlx.errors import RlxError

OFF = {"num_envs": 4, "unroll_length": 4, "utd_ratio": 0.5, "batch_size": 16, "hidden": (16,),
       "learning_starts": 32, "total_steps": 256}  # fmt: skip
PPO = {"total_steps": 384, "num_envs": 8, "unroll_length": 8, "num_minibatches": 2,
       "num_epochs": 2, "policy_hidden": (16,), "value_hidden": (16,)}  # fmt: skip
BC = {"total_steps": 40, "grad_steps_per_update": 10, "batch_size": 16, "hidden": (16,)}
CASES = {
    "ppo": (PPO, {"policy", "obs_stats"}),
    "td3": (OFF, {"actor"}),
    "sac": (OFF, {"actor"}),
    "residual_td3": (OFF, {"actor"}),
    "bc": (BC, {"policy", "obs_stats"}),
    "baseline": ({"num_envs": 4, "unroll_length": 4, "total_steps": 256}, set()),
}
TRAIN_ARGS = ["--algo", "ppo", "--env", "pendulum_swingup", "--seeds", "3", "--total-steps",
              "384", "--set", "num_envs=8", "--set", "unroll_length=8", "--set",
              "num_minibatches=2", "--set", "num_epochs=2", "--set", "policy_hidden=16", "--set",
              "value_hidden=16", "--num-evals", "3", "--eval-episodes", "4", "--runs-per-slice",
              "2", "--quiet"]  # fmt: skip


CACHE = jax.config.jax_compilation_cache_dir  # the tests' (conftest.py)


@pytest.fixture(autouse=True)
def _test_cache(monkeypatch):
    """`rlx` commands set JAX's compilation cache: keep it the tests' one."""
    monkeypatch.setenv("RLX_COMPILATION_CACHE", str(CACHE))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "demos.npz"
    data = datasets.collect_baseline_dataset("pendulum_swingup", 4, 50, noise=0.1, seed=0)
    return datasets.save_npz(path, data)


@pytest.fixture(scope="module")
def trained(dataset):
    """algo -> rlx.train Result of 2 seeds (trained lazily, once per module)."""
    cache = {}

    def get(algo: str) -> rlx.Result:
        if algo not in cache:
            extra = {"assets": {"dataset": dataset}} if algo == "bc" else {}
            cache[algo] = rlx.train(algo, "pendulum_swingup", seeds=2, overrides=CASES[algo][0],
                                    num_evals=2, eval_episodes=4, progress=False, **extra)  # fmt: skip
        return cache[algo]

    return get


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`rlx train --export` of 3 PPO runs (slices of 2): (run directory, export directory)."""
    root = tmp_path_factory.mktemp("cli")
    out, export = root / "run", root / "policies"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RLX_COMPILATION_CACHE", str(CACHE))
        assert cli.main(["train", *TRAIN_ARGS, "--out", str(out), "--export", str(export)]) == 0
    return out, export


def _actions(act, deterministic: bool) -> np.ndarray:
    obs = jax.random.normal(jax.random.PRNGKey(5), (64, 3)) * 2.0
    keys = jax.random.split(jax.random.PRNGKey(6), 64)
    return np.asarray(jax.jit(jax.vmap(lambda o, k: act(o, k, deterministic)))(obs, keys))


@pytest.mark.parametrize("algo", list(CASES))
@pytest.mark.slow
def test_exported_policy_acts_as_the_training_state(trained, tmp_path, algo):
    result = trained(algo)
    path = result.export_policy(tmp_path / "p", run=1)
    loaded = rlx.load_policy(path)
    for deterministic in (True, False):
        np.testing.assert_array_equal(
            _actions(loaded, deterministic), _actions(result.policy(1), deterministic)
        )
    other_run = _actions(result.policy(0), False)
    if algo != "baseline":  # the two seeds' policies differ, and the artifact is run 1's
        assert not np.array_equal(other_run, _actions(loaded, False))


@pytest.mark.parametrize("algo", list(CASES))
def test_artifact_holds_only_what_the_policy_needs(trained, tmp_path, algo):
    path = trained(algo).export_policy(tmp_path / "p", run=0)
    meta = json.loads((path / "policy.json").read_text())
    assert {key.split("/")[0] for key in meta["params"]} == CASES[algo][1]
    assert meta["algorithm"] == algo and meta["env"] == "pendulum_swingup"
    assert (meta["observation_size"], meta["action_size"]) == (3, 1)
    assert meta["run"]["seed"] == 0 and meta["git"] and meta["rlx_version"] == rlx.__version__
    assert (path / "params").is_dir() == bool(CASES[algo][1])  # baseline: no params at all


def test_params_are_stored_keyed_by_tree_path(trained, tmp_path):
    path = trained("ppo").export_policy(tmp_path / "p", run=0)
    stored = ocp.StandardCheckpointer().restore(path / "params")
    assert "policy/params/MLP_0/Dense_0/kernel" in stored
    assert set(stored) == {"obs_stats/count", "obs_stats/mean", "obs_stats/m2"} | {
        k for k in stored if k.startswith("policy/params/")
    }
    # Rewritten with the keys in reverse order (another code version's field order): the
    # artifact loads by name and acts the same.
    before = _actions(rlx.load_policy(path), True)
    shutil.rmtree(path / "params")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path / "params", {k: stored[k] for k in sorted(stored, reverse=True)})
    checkpointer.wait_until_finished()
    np.testing.assert_array_equal(_actions(rlx.load_policy(path), True), before)


@pytest.mark.slow
def test_eval_of_an_exported_run_gives_its_last_recorded_evaluation(exported, tmp_path, capsys):
    out, export = exported
    record = json.loads((out / "record.json").read_text())
    assert sorted(p.name for p in export.iterdir()) == ["run-0", "run-1", "run-2"]
    for run in (0, 2):  # run 2 is the second slice's
        result = tmp_path / f"eval-{run}.json"
        code = cli.main(
            ["eval", str(export / f"run-{run}"), "--episodes", "4", "--out", str(result)]
        )
        assert code == 0
        metrics = json.loads(result.read_text())["metrics"]
        final = record["runs"][run]["final"]
        for name in ("eval/return", "eval/goal_reached"):
            np.testing.assert_allclose(metrics[name], final[name], rtol=1e-6)
    assert "| return |" in capsys.readouterr().out


def test_export_run_exports_that_run_only(tmp_path):
    export = tmp_path / "policies"
    argv = ["train", *TRAIN_ARGS, "--out", str(tmp_path / "run"), "--export", str(export)]
    assert cli.main([*argv, "--export-run", "2"]) == 0
    assert [p.name for p in export.iterdir()] == ["run-2"]
    assert json.loads((export / "run-2" / "policy.json").read_text())["run"]["seed"] == 2


def _error(capsys, argv: list[str]) -> str:
    """The stderr of a command that must fail with one `rlx: error:` line and exit code 2."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlx: error: ") and err.count("\n") == 1, err
    return err


def test_bad_artifacts_are_refused(exported, tmp_path, capsys):
    _, export = exported
    out = tmp_path / "eval.json"
    err = _error(capsys, ["eval", str(tmp_path / "missing"), "--out", str(out)])
    assert "does not exist" in err
    no_meta = shutil.copytree(export / "run-0", tmp_path / "no-meta")
    (no_meta / "policy.json").unlink()
    assert "it has no policy.json" in _error(capsys, ["eval", str(no_meta), "--out", str(out)])
    no_params = shutil.copytree(export / "run-0", tmp_path / "no-params")
    shutil.rmtree(no_params / "params")
    assert "it has no params/" in _error(capsys, ["eval", str(no_params), "--out", str(out)])
    err = _error(capsys, ["eval", str(export / "run-0"), "--env", "cartpole_swingup", "--out",
                          str(out)])  # fmt: skip
    assert "trained on pendulum_swingup (observation size 3, action size 1)" in err
    assert "cartpole_swingup has observation size 5, action size 1" in err
    assert not out.exists()


def test_params_that_do_not_match_the_json_are_refused(exported, tmp_path):
    _, export = exported
    copy = shutil.copytree(export / "run-0", tmp_path / "renamed")
    meta = json.loads((copy / "policy.json").read_text())
    meta["params"]["policy/params/MLP_0/Dense_0/weights"] = meta["params"].pop(
        "policy/params/MLP_0/Dense_0/kernel"
    )
    (copy / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(RlxError, match=r"missing .*Dense_0/weights.*unexpected .*Dense_0/kernel"):
        rlx.load_policy(copy)


def test_export_run_out_of_range_is_refused_before_anything_runs(tmp_path, capsys):
    out, export = tmp_path / "run", tmp_path / "policies"
    argv = ["train", *TRAIN_ARGS, "--out", str(out), "--export", str(export)]
    err = _error(capsys, [*argv, "--export-run", "3"])
    assert "--export-run 3 is out of range: this batch has runs 0..2" in err
    assert "--export-run needs --export" in _error(capsys, [*argv[:-2], "--export-run", "0"])
    assert not out.exists() and not export.exists()


def test_path_keys_round_trip_and_refuse_non_dict_trees():
    params = {"b": {"y": np.ones(2), "x": np.zeros(())}, "a": np.arange(3)}
    flat = policy_mod.flatten_params(params)
    assert list(flat) == ["a", "b/x", "b/y"]
    restored = policy_mod.unflatten_params(dict(reversed(flat.items())))
    jax.tree.map(np.testing.assert_array_equal, restored, params)
    with pytest.raises(TypeError, match="nested dicts with string keys"):
        policy_mod.flatten_params({"a": [np.ones(1)]})


SWEEP = """
name = "tiny"
algorithms = ["ppo"]
environments = ["pendulum_swingup"]
seeds = 3
total_steps = 384
num_evals = 3
eval_episodes = 4

[settings.ppo]
num_envs = 8
unroll_length = 8
num_minibatches = 2
num_epochs = 2
policy_hidden = [16]
value_hidden = [16]
"""


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.slow
def test_sweep_keeps_every_cells_final_policies(tmp_path, keep):
    from rlx import sweep

    sw = sweep.load(_write_text(tmp_path / "s.toml", SWEEP))
    out = tmp_path / "out"
    sweep.run_sweep(sw, out, progress=False, runs_per_slice=2, keep_policies=keep)
    folder = out / "policies" / "ppo__pendulum_swingup"
    if not keep:
        assert not (out / "policies").exists()
        return
    assert sorted(p.name for p in folder.iterdir()) == ["run-0", "run-1", "run-2"]
    record = json.loads((out / "cells" / "ppo__pendulum_swingup" / "record.json").read_text())
    artifact = policy_mod.load_artifact(folder / "run-2")
    metrics = policy_mod.evaluate_artifact(artifact, 4, seed=2, point=3)
    np.testing.assert_allclose(
        metrics["eval/return"], record["runs"][2]["final"]["eval/return"], rtol=1e-6
    )


def _write_text(path, text: str):
    path.write_text(text)
    return path


def test_render_of_an_exported_run_writes_a_gif_of_that_policy(exported, tmp_path, capsys):
    from PIL import Image

    _, export = exported
    out = tmp_path / "run1.gif"
    assert cli.main(["render", str(export / "run-1"), "--out", str(out), "--steps", "6"]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 7  # the reset state and 6 steps
    assert "6 steps of ppo on pendulum_swingup" in capsys.readouterr().out
    err = _error(capsys, ["render", str(export / "run-1"), "--out", str(tmp_path / "x.html")])
    assert "renders to a .gif file" in err and not (tmp_path / "x.html").exists()
    err = _error(capsys, ["render", str(tmp_path / "none"), "--out", str(tmp_path / "y.gif")])
    assert "y.gif" not in {p.name for p in tmp_path.iterdir()}
