"""One program over two processes (`jax.distributed` over localhost, 2 CPU devices each) on an
MJX task: the curves equal a one-process run of the same seeds, only process 0 writes and
prints, and missing or stray distributed settings are one error line."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CACHE = os.environ.get(
    "RLX_TEST_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "jax")
)
# An MJX task (MJX places models on a device of its choosing; see envs.models_on_local_device)
# and 5 seeds on 4 devices: the run axis is padded to 8, two runs a device, so the runner
# also checks the chunk's memory against a device (this process's own).
TRAIN = [
    sys.executable, "-m", "rlx.cli", "train", "--algo", "ppo", "--env", "brax:inverted_pendulum",
    "--backend", "mjx", "--seeds", "3,5,7,9,11", "--set", "num_envs=4", "--set", "unroll_length=8",
    "--set", "num_minibatches=2", "--set", "num_epochs=1", "--set", "policy_hidden=16",
    "--set", "value_hidden=16", "--set", "episode_length=48", "--total-steps", "64",
    "--num-evals", "2", "--eval-episodes", "2",
]  # fmt: skip


def _env(devices: int) -> dict[str, str]:
    return {**os.environ, "RLX_COMPILATION_CACHE": CACHE, "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _curves(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (out / "curves.csv").open() as f:
        return {(r["run"], r["env_steps"]): r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_two_processes_give_the_one_process_numbers_and_only_process_0_writes(tmp_path):
    # The one-process reference runs beside the two processes: compiling is single-threaded,
    # so three processes at once keep both cores busy.
    with (tmp_path / "single.log").open("w") as log:  # the child keeps its own copy
        single = subprocess.Popen([*TRAIN, "--out", str(tmp_path / "single"), "--quiet"],
                                  env=_env(4), stdout=log, stderr=log)  # fmt: skip
    out, port = tmp_path / "multi", _free_port()
    procs = [
        subprocess.Popen(
            [*TRAIN, "--out", str(out), "--distributed", "--coordinator", f"127.0.0.1:{port}",
             "--num-processes", "2", "--process-id", str(i)],
            env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]  # fmt: skip
    results = [p.communicate(timeout=600) for p in procs]
    assert single.wait(timeout=600) == 0, (tmp_path / "single.log").read_text()[-3000:]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
    (out0, _), (out1, _) = results
    assert "training" in out0 and str(out) in out0  # progress bar and summary on process 0
    assert "training" not in out1 and str(out) not in out1  # ... and nothing on process 1

    record = (out / "record.json").read_text()
    assert '"process_count": 2' in record and '"devices": 4' in record
    assert not (tmp_path / "multi.partial").exists()
    a, b = _curves(tmp_path / "single"), _curves(out)
    assert a.keys() == b.keys() and len(a) == 5 * 3
    for key, row in a.items():
        assert b[key].keys() == row.keys() and "eval/return" in row
        np.testing.assert_allclose([float(b[key][c]) for c in row], [float(v) for v in row.values()],
                                   rtol=1e-5, equal_nan=True)  # fmt: skip


def test_distributed_settings_missing_or_stray_are_one_error(tmp_path):
    stray = subprocess.run([*TRAIN, "--out", str(tmp_path / "a"), "--process-id", "1"],
                           env=_env(1), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert stray.returncode == 2
    assert stray.stderr.strip() == (
        "rlx: error: --process-id applies to --distributed runs only; add --distributed."
    )
    bad = subprocess.run([*TRAIN, "--out", str(tmp_path / "b"), "--distributed",
                          "--num-processes", "2", "--process-id", "2"],
                         env=_env(1), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "--process-id must be in 0..1" in bad.stderr
    env = {k: v for k, v in _env(1).items()
           if not k.startswith(("SLURM_", "OMPI_", "JAX_COORDINATOR"))}  # fmt: skip
    missing = subprocess.run([*TRAIN, "--out", str(tmp_path / "c"), "--distributed"],
                             env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 2, missing.stderr[-2000:]
    assert missing.stderr.count("\n") == 1 and "could not start JAX's distributed" in missing.stderr
    assert not any(tmp_path.iterdir())
