"""Happy paths of CLI commands that had only error-path tests: ``rlx bench`` (the quick
throughput benchmark of one env and one seed count, no peer), ``rlx dataset collect``,
``rlx dataset make`` (the files written, their contents and the printed sha256 line) and
``rlx plot`` (on a tiny finished sweep: the PNGs are written again and are not blank)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest

from rlx import cli
from rlx.data.datasets import FIELDS, load_dataset


@pytest.fixture(autouse=True)
def _test_cache(monkeypatch):
    """`rlx` commands set JAX's compilation cache: keep it the tests' one."""
    min_seconds = jax.config.jax_persistent_cache_min_compile_time_secs
    monkeypatch.setenv("RLX_COMPILATION_CACHE", str(jax.config.jax_compilation_cache_dir))
    yield
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_seconds)


def _sha_line(out: str, path: Path) -> str:
    """The 16-hex-digit sha256 printed on the ``wrote PATH...`` line."""
    (line,) = [x for x in out.splitlines() if x.startswith(f"wrote {path}")]
    return line.rsplit("sha256 ", 1)[1]


def _tree_sha256(path: Path) -> str:
    """SHA-256 of a file, or of every file under a directory (relative name, NUL, contents)."""
    digest = hashlib.sha256()
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def test_dataset_collect_writes_the_controllers_transitions(tmp_path, capsys):
    out = tmp_path / "demos.npz"
    argv = ["dataset", "collect", "--env", "pendulum_swingup", "--episodes", "3",
            "--episode-length", "20", "--noise", "0.1", "--seed", "1", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: 60 transitions, sha256 " in printed
    assert _sha_line(printed, out) == _tree_sha256(out)[:16]
    data = load_dataset(out)
    assert set(data) == set(FIELDS) and data["observations"].shape == (60, 3)
    assert data["actions"].shape == (60, 1) and np.abs(data["actions"]).max() <= 1.0
    # Within an episode, each row's next observation is the following row's observation.
    same = np.array([t for t in range(59) if (t + 1) % 20])
    np.testing.assert_allclose(data["observations"][same + 1], data["next_observations"][same])
    again = tmp_path / "again.npz"
    assert cli.main([*argv[:-1], str(again)]) == 0  # the same seed: the same bytes
    assert _sha_line(capsys.readouterr().out, again) == _sha_line(printed, out)
    assert cli.main([*argv[:-3], "2", "--out", str(tmp_path / "other.npz")]) == 0
    assert _sha_line(capsys.readouterr().out, tmp_path / "other.npz") != _sha_line(printed, out)


def test_dataset_make_writes_the_recipes_directory(tmp_path, capsys):
    out = tmp_path / "maze"
    argv = ["dataset", "make", "pointmaze-medium-navigate", "--out", str(out), "--episodes",
            "2", "--steps", "11", "--seed", "4"]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (pointmaze-medium-navigate, seed4-e2-s11), sha256 " in printed
    assert _sha_line(printed, out) == _tree_sha256(out)[:16]
    meta = json.loads((out / "dataset.json").read_text())
    assert (meta["recipe"], meta["seed"], meta["episodes"], meta["steps"]) == (
        "pointmaze-medium-navigate",
        4,
        2,
        11,
    )
    assert meta["rows"] == {"train": 22, "val": 11}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["dataset.json", meta["train"], meta["val"]]
    )
    for split in ("train", "val"):
        data = load_dataset(out / meta[split])
        assert data["observations"].shape == (meta["rows"][split], 2)
        assert np.flatnonzero(data["terminals"]).tolist() == list(
            range(10, meta["rows"][split], 11)
        )


@pytest.mark.slow
def test_bench_quick_throughput_writes_its_table_and_figures(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "--quick", "--no-peer", "--envs", "pendulum_swingup", "--seeds", "1",
            "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    report = json.loads((out / "bench.json").read_text())
    assert list(report["cases"]) == ["pendulum_swingup"]
    case = report["cases"]["pendulum_swingup"]
    assert case["total_steps"] == 60_000 and "peer" not in case
    assert list(case["raw"]) == ["1"] and len(case["ours"]) == 1
    ours = case["ours"][0]
    assert ours["seeds"] == 1 and ours["env_steps_per_s"] > 0 and ours["compile_s"] > 0
    assert np.isfinite(ours["final_return_mean"]) and np.isfinite(ours["untrained_return_mean"])
    table = (out / "README.md").read_text()
    assert "pendulum_swingup" in table and "|" in table


SWEEP = """
name = "tiny"
algorithms = ["ppo", "baseline"]
environments = ["pendulum_swingup"]
seeds = 2
total_steps = 256
num_evals = 2
eval_episodes = 2

[settings.ppo]
num_envs = 8
unroll_length = 8
num_minibatches = 2
num_epochs = 1
policy_hidden = [16]
value_hidden = [16]

[settings.baseline]
num_envs = 8
unroll_length = 8
"""
BLUE, ORANGE = (matplotlib.colors.to_rgb(f"tab:{c}") for c in ("blue", "orange"))


def _drawn(path: Path) -> bool:
    """The PNG is mostly white background with both label colours' lines drawn on it."""
    img = matplotlib.image.imread(path)[..., :3]
    white = (img > 0.99).all(-1).mean()
    lines = [(np.abs(img - c).max(-1) < 0.02).sum() for c in (BLUE, ORANGE)]
    return 0.3 < white < 0.98 and min(lines) > 100


@pytest.mark.slow
def test_plot_of_a_finished_sweep_writes_non_blank_pngs(tmp_path, capsys):
    path, out = tmp_path / "tiny.toml", tmp_path / "res"
    path.write_text(SWEEP)
    assert cli.main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    for png in out.glob("*.png"):
        png.unlink()
    capsys.readouterr()
    assert cli.main(["plot", str(out)]) == 0
    printed = capsys.readouterr().out
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["learning_curves.png", "performance_profile.png"], pngs
    for name in pngs:
        assert str(out / name) in printed
        assert _drawn(out / name), name
