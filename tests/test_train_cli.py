"""`rlx train` as a long job: resume after kill -9 with identical curves, partial curves on disk
while it runs, live logs (TensorBoard, wandb offline) per seed and mean, `--dry-run`, `rlx list
ALGO`, and refusal of a checkpoint of another plan or code."""

from __future__ import annotations

import csv
import json
import os
import signal
import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import jax
import numpy as np
import pytest

from rlx import algorithm, cli, runner
from rlx import config as cfg
from rlx.runner import describe
from rlx.runner.checkpoint import RunCheckpointer

CACHE = os.environ.get(
    "RLX_TEST_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "jax")
)

# 3 seeds x 2 grid points = 6 runs in slices of 2: grid point 0 (runs 0-2) spans slices 0 and 1.
# 6 updates of 64 env steps, 3 chunks of 2 updates: evaluation points at 0, 128, 256, 384.
# Checkpoint n is slice n // 4 after chunk n % 4.
TRAIN = [
    "train", "--algo", "ppo", "--env", "pendulum_swingup", "--seeds", "3,5,9",
    "--grid", "learning_rate=1e-3,3e-4", "--set", "num_envs=8", "--set", "unroll_length=8",
    "--set", "num_minibatches=2", "--set", "num_epochs=2", "--set", "policy_hidden=16",
    "--set", "value_hidden=16", "--total-steps", "384", "--num-evals", "3",
    "--eval-episodes", "2", "--runs-per-slice", "2", "--quiet", "--tensorboard",
]  # fmt: skip
STEPS = [0, 128, 256, 384]
NAMES = {0: "learning_rate=0.001", 1: "learning_rate=0.0003"}


def _record(out: Path) -> dict:
    return json.loads((out / "record.json").read_text())


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _tensorboard(logdir: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{run directory: {tag: [(step, value), ...] sorted}} of every event file under `logdir`
    (TFRecord framing: u64 length, u32 crc, the Event proto, u32 crc)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(logdir.rglob("events.out.tfevents.*")):
        run, data, pos = path.parent.relative_to(logdir).as_posix(), path.read_bytes(), 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + n])
            pos += 12 + n + 4
            for value in event.summary.value:
                out[run][value.tag].append((event.step, value.simple_value))
    return {run: {tag: sorted(v) for tag, v in tags.items()} for run, tags in out.items()}


def _wandb_history(run_file: Path) -> list[dict[str, float]]:
    """The history rows of an offline wandb run file (LevelDB-log framing: a 7-byte file header,
    then records of u32 crc, u16 length, u8 type in 32 KiB blocks; payload: wandb's Record)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, buf, rows = run_file.read_bytes(), 7, 32768, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        buf, pos = buf + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        if kind in (1, 4):  # a whole record, or the last piece of one
            rec = wandb_internal_pb2.Record.FromString(buf)
            buf = b""
            if rec.WhichOneof("record_type") == "history":
                rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                             for i in rec.history.item})  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted `rlx train` (in this process), with TensorBoard and offline wandb."""
    out = tmp_path_factory.mktemp("straight") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RLX_COMPILATION_CACHE", CACHE)
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        mp.delenv("WANDB_DIR", raising=False)
        assert cli.main([*TRAIN, "--wandb", "rlx-test", "--out", str(out)]) == 0
    return out


def _train(out: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlx.cli", *TRAIN, "--out", str(out)],
        env={**os.environ, "RLX_COMPILATION_CACHE": CACHE, **env},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_killed_train_resumes_with_identical_curves_and_kept_partial_curves(straight, tmp_path):
    out = tmp_path / "run"
    partial = tmp_path / "run.partial"
    killed = _train(out, RLX_TEST_KILL_AT_CHECKPOINT="5")  # slice 1, after its first chunk
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    # The partial curves hold exactly the points done so far, with the final run's values.
    final = {(r["run"], r["env_steps"]): r for r in _rows(straight / "curves.csv")}
    rows = _rows(partial / "curves.csv")
    done = defaultdict(list)
    for row in rows:
        done[int(row["run"])].append(int(row["env_steps"]))
        assert row == {k: final[(row["run"], row["env_steps"])][k] for k in row}
    assert done == {0: STEPS, 1: STEPS, 2: STEPS[:2], 3: STEPS[:2]}

    again = _train(out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from the checkpoint in {partial}" in again.stdout
    assert not partial.exists()
    rec, ref = _record(out), _record(straight)
    assert rec["execution"]["resumed"] is True
    assert [r["seed"] for r in rec["runs"]] == [3, 5, 9, 3, 5, 9]
    for run, expected in zip(rec["runs"], ref["runs"], strict=True):
        assert run["curve"].keys() == expected["curve"].keys()
        for name, values in expected["curve"].items():
            np.testing.assert_array_equal(run["curve"][name], values, err_msg=name)
    # Events of both processes: every point of every seed and mean exactly once, as uninterrupted.
    assert _tensorboard(out / "tensorboard") == _tensorboard(straight / "tensorboard")


def test_tensorboard_events_hold_every_seed_and_each_grid_points_mean(straight):
    events = _tensorboard(straight / "tensorboard")
    rec = _record(straight)
    expected_runs = {f"{NAMES[g]}/{leaf}" for g in NAMES for leaf in ("mean", "seed_3", "seed_5",
                                                                       "seed_9")}  # fmt: skip
    assert set(events) == expected_runs
    for g, name in NAMES.items():
        members = [r for r in rec["runs"] if r["run"] // 3 == g]
        for r in members:
            seed = events[f"{name}/seed_{r['seed']}"]
            assert [s for s, _ in seed["eval/return"]] == STEPS
            np.testing.assert_allclose([v for _, v in seed["eval/return"]],
                                       r["curve"]["eval/return"], rtol=1e-6)  # fmt: skip
            assert [s for s, _ in seed["loss/value"]] == STEPS[1:]  # train metrics: from chunk 1
        mean = events[f"{name}/mean"]
        assert [s for s, _ in mean["eval/return"]] == STEPS
        np.testing.assert_allclose(
            [v for _, v in mean["eval/return"]],
            np.mean([r["curve"]["eval/return"] for r in members], axis=0),
            rtol=1e-6,
        )
        assert [s for s, _ in mean["loss/value"]] == STEPS[1:]


def test_wandb_offline_run_holds_the_logged_history(straight):
    (run_file,) = (straight / "wandb").glob("offline-run-*/run-*.wandb")
    history = _wandb_history(run_file)
    rec = _record(straight)
    for r in rec["runs"]:
        key = f"{NAMES[r['run'] // 3]}/seed_{r['seed']}/eval/return"
        logged = [(h["env_steps"], h[key]) for h in history if key in h]
        assert [s for s, _ in logged] == STEPS, key
        np.testing.assert_allclose([v for _, v in logged], r["curve"]["eval/return"], rtol=1e-6)
    means = [h for h in history if f"{NAMES[1]}/mean/eval/return" in h]
    assert [h["env_steps"] for h in means] == STEPS


def _fake_checkpoint(directory: Path, digest: str, code: str) -> None:
    ckpt = RunCheckpointer(directory)
    pos = {"slice": 0, "chunk": 1, "slice_size": 1}
    ckpt.save(1, {"x": jax.numpy.zeros(2)}, {"hash": digest, "code": code, "position": pos,
                                              "curves": {}, "timing": {}})  # fmt: skip
    ckpt.close()


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize(
    ("digest", "code", "expected"),
    [
        ("0123456789abcdef", None, "holds an unfinished run of a different configuration (plan "
         "0123456789abcdef, this is"),
        (None, "0123456789ab", "holds an unfinished run of code 0123456789ab (this is"),
    ],
)  # fmt: skip
def test_a_checkpoint_of_another_plan_or_code_is_refused_unless_overwrite(
    tmp_path, capsys, digest, code, expected
):
    from rlx.provenance import code_identity, git_state

    args = [a for a in TRAIN if a != "--tensorboard"]
    rp = runner.plan("ppo", "pendulum_swingup", seeds=[3, 5, 9],
                     grid={"learning_rate": [1e-3, 3e-4]}, num_evals=3, eval_episodes=2,
                     overrides=dict(num_envs=8, unroll_length=8, num_minibatches=2, num_epochs=2,
                                    policy_hidden=(16,), value_hidden=(16,), total_steps=384))  # fmt: skip
    git = git_state()
    now = code_identity({"git": git["revision"], "diff_sha256": git["diff_sha256"]})
    out, partial = tmp_path / "run", tmp_path / "run.partial"
    _fake_checkpoint(partial / "checkpoints", digest or runner.plan_hash(rp), code or now)
    before = _listing(tmp_path)
    for extra in ([], ["--dry-run"]):
        assert cli.main([*args, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("rlx: error: ") and err.count("\n") == 1, err
        assert expected in err and "--overwrite to discard it" in err
        assert _listing(tmp_path) == before  # nothing written, nothing removed
    # --overwrite would discard it (shown without running: --dry-run says no resume)
    assert cli.main([*args, "--dry-run", "--overwrite", "--out", str(out)]) == 0
    assert "resume:" not in capsys.readouterr().out
    assert _listing(tmp_path) == before
    # the same plan by the same code is resumed (named by --dry-run)
    if code is not None:
        assert cli.main([*args, "--dry-run", "--accept-revision-change", "--out", str(out)]) == 0
        assert f"resume: from {partial} (evaluation point 1 of 3" in capsys.readouterr().out


def test_dry_run_prints_config_plan_shape_and_memory_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    args = [a for a in TRAIN if a not in ("--tensorboard", "--seeds", "3,5,9")]
    assert cli.main([*args, "--seeds", "5-7", "--dry-run", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    rp = runner.plan("ppo", "pendulum_swingup", seeds=[5, 6, 7],
                     grid={"learning_rate": [1e-3, 3e-4]}, num_evals=3, eval_episodes=2,
                     overrides=dict(num_envs=8, unroll_length=8, num_minibatches=2, num_epochs=2,
                                    policy_hidden=(16,), value_hidden=(16,), total_steps=384))  # fmt: skip
    for line in (
        f"plan {runner.plan_hash(rp)}: ppo on pendulum_swingup",
        "seeds: 5, 6, 7 (3)",
        "runs: 6 (2 grid points x 3 seeds)",
        "budget: 384 env steps per run, 2,304 in all",
        "updates: 6 per run of 64 env steps",
        "chunks: 3 of 2 updates (128 env steps)",
        "batch: 2 runs per compiled program (3 slices) x 64 env steps per update "
        "(num_envs 8 x unroll_length 8)",
        "* learning_rate",
        "[0.001, 0.0003]",
    ):
        assert line in text, line
    for name, kind, _, _ in cfg.describe(rp.algorithm.Config):
        assert any(name in ln and kind in ln for ln in text.splitlines()), name
    # the memory estimate is the bytes of a real initial state (one run), times the runs
    state = jax.jit(lambda k: rp.algorithm.init(k, rp.make_env(), rp.base_config, {}))(
        jax.random.PRNGKey(0)
    )
    per_run = sum(x.nbytes for x in jax.tree.leaves(state))
    assert describe.state_bytes(rp) == (per_run, 0)
    assert f"memory: training state {describe.bytes_text(per_run)} per run; 2 runs at once" in text


def test_list_algorithm_prints_every_field_with_its_default_kind_and_doc(capsys):
    # fpg_state is a variant: its defaults differ from its Config class's
    assert algorithm.get("fpg_state").Config().baseline != "state"
    for name in ("ppo", "fpg_state"):
        assert cli.main(["list", name]) == 0
        lines = capsys.readouterr().out.splitlines()
        algo = algorithm.get(name)
        config = algo.make_config()
        assert lines[0] == f"{name}: {algo.description}"
        for field, kind, _, doc in cfg.describe(algo.Config):
            (line,) = [ln for ln in lines if ln.split()[:1] == [field]]
            assert line.split()[1:3] == [describe.value_text(getattr(config, field)), kind], line
            assert line.rstrip().endswith(doc), line
    assert ["baseline", "state", "static"] in [ln.split()[:3] for ln in lines]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list", "nonexistent"], "unknown algorithm 'nonexistent'."),
        (["list", "ppoo"], "unknown algorithm 'ppoo'. Did you mean 'ppo' or 'sft_ppo'?"),
    ],
)
def test_list_of_an_unknown_algorithm_is_one_error_line(capsys, argv, expected):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"rlx: error: {expected}") and captured.err.count("\n") == 1
    assert captured.out == ""
