"""How a batch is executed must not change its numbers, compared on every curve of the record.

For an off-policy algorithm with a replay ring in its state (TD3 on the pendulum, the ring
wrapping around within the budget) and for PPO on a Brax MJX environment:

* seed ``i`` of a batch equals a single run with seed ``i``;
* the batch sharded over 4 (forced) CPU devices equals the unsharded batch, and 3 seeds on
  the 4 devices (padded to 4 runs) equal the batch's first 3;
* a process killed with SIGKILL after a checkpoint and resumed equals an uninterrupted run,
  including a kill in the second slice of a multi-slice batch;
* a process killed *while* a checkpoint is being written (``RLX_TEST_KILL_IN_CHECKPOINT_WRITE``,
  see `rlx.runner.checkpoint`) resumes from the checkpoint before and equals an uninterrupted run.

Killed runs and sharded runs execute in subprocesses through the public API
(`rlx.runner.plan`, `rlx.runner.run`); the uninterrupted references run in this process. Runs
on the same devices with the same slices must agree exactly; a different batch layout (one run
per slice, one run per device) changes the size of the vmapped axis, so XLA may pick other
kernels and the last bits may differ: those comparisons use a tight relative tolerance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from rlx import runner
from rlx.runner.checkpoint import RunCheckpointer

# TD3 on the pendulum: 4 envs x 4 steps per update, 4 gradient steps per update, a 48-row replay
# ring (wraps around in a 96-step budget), 8-step episodes (one ends in every chunk);
# 3 chunks of 2 updates. Two slices of 2 runs.
TD3 = dict(
    algo="td3",
    env="pendulum_swingup",
    seeds=4,
    overrides=dict(
        num_envs=4, unroll_length=4, batch_size=16, buffer_size=48, learning_starts=32,
        hidden=(16,), episode_length=8, total_steps=96,
    ),
    num_evals=3,
    eval_episodes=2,
)  # fmt: skip
TD3_SLICE = 2
# PPO on Brax's inverted pendulum with MJX physics: 4 envs x 8 steps per update, 2 chunks of 1
# update; 48-step episodes (the deterministic policy keeps the pole up for 20-40 steps).
PPO_MJX = dict(
    algo="ppo",
    env="brax:inverted_pendulum",
    env_kwargs={"backend": "mjx"},
    seeds=4,
    overrides=dict(
        num_envs=4, unroll_length=8, num_minibatches=2, num_epochs=1, policy_hidden=(16,),
        value_hidden=(16,), episode_length=48, total_steps=64,
    ),
    num_evals=2,
    eval_episodes=2,
)  # fmt: skip

# Different vmapped batch sizes (1 vs 2 vs 4 runs per program or per device) may round
# differently in the last bits; anything beyond that is a real difference.
RTOL, ATOL = 1e-5, 1e-7

# Runs plans in a fresh interpreter: argv[1] is a Python literal {name: (plan kwargs, run
# kwargs)}, argv[2] the JSON file to write {name: record} to.
SCRIPT = """
import ast, json, os, sys
from pathlib import Path
import jax
jax.config.update("jax_compilation_cache_dir", os.environ["RLX_TEST_JAX_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
from rlx import runner
out = {}
for name, (plan_kw, run_kw) in ast.literal_eval(sys.argv[1]).items():
    rp = runner.plan(plan_kw.pop("algo"), plan_kw.pop("env"), **plan_kw)
    if "devices" in run_kw:
        run_kw["devices"] = jax.devices()[: run_kw["devices"]]
    if "checkpoint_dir" in run_kw:
        run_kw["checkpoint_dir"] = Path(run_kw["checkpoint_dir"])
    out[name] = runner.run(rp, progress=False, **run_kw)
Path(sys.argv[2]).write_text(json.dumps(out))
"""


def _subprocess(
    tmp_path: Path, jobs: dict[str, tuple[dict, dict]], **env: str
) -> subprocess.CompletedProcess:
    """Runs `jobs` in a fresh CPU-only interpreter with extra environment variables `env`."""
    out = tmp_path / "records.json"
    full_env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        RLX_TEST_JAX_CACHE=str(jax.config.jax_compilation_cache_dir),
        **env,
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, repr(jobs), str(out)],
        env=full_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    proc.records = json.loads(out.read_text()) if out.exists() else None
    return proc


def _run_here(spec: dict, **run_kw: Any) -> dict:
    spec = dict(spec)
    rp = runner.plan(spec.pop("algo"), spec.pop("env"), **spec)
    return runner.run(rp, progress=False, **run_kw)


def _assert_same_curves(got: dict, want: dict, runs=None, exact: bool = False) -> None:
    """Every curve of every run (or of `runs`: got's run j against want's run runs[j]) agrees,
    exactly or within RTOL/ATOL; both have the same curve keys."""
    runs = range(len(want["runs"])) if runs is None else runs
    assert len(got["runs"]) == len(runs)
    for j, i in enumerate(runs):
        g, w = got["runs"][j]["curve"], want["runs"][i]["curve"]
        assert sorted(g) == sorted(w)
        assert len(w) > 5 and len(w["env_steps"]) > 2  # evaluation and training metrics
        for key in w:
            if exact:
                np.testing.assert_array_equal(g[key], w[key], err_msg=f"run {i}, {key}")
            else:
                np.testing.assert_allclose(
                    g[key], w[key], rtol=RTOL, atol=ATOL, err_msg=f"run {i}, {key}"
                )
        assert "failed" not in got["runs"][j]


@pytest.fixture(scope="module")
def td3_reference():
    """The uninterrupted TD3 batch: 4 seeds in 2 slices of 2, on this process's one device."""
    return _run_here(TD3, runs_per_slice=TD3_SLICE)


@pytest.fixture(scope="module")
def ppo_reference():
    """The uninterrupted PPO/MJX batch: 4 seeds in one slice."""
    return _run_here(PPO_MJX)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """Both batches over 4 forced CPU devices (one run per device), and TD3's first 3 seeds
    over the same 4 devices (one run padded), in one subprocess."""
    td3_three = {**TD3, "seeds": 3}
    proc = _subprocess(
        tmp_path_factory.mktemp("sharded"),
        {
            "td3": (TD3, {"devices": 4}),
            "ppo": (PPO_MJX, {"devices": 4}),
            "td3_three": (td3_three, {"devices": 4}),
        },
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.records


@pytest.mark.slow
def test_reference_runs_are_informative(td3_reference, ppo_reference):
    """The comparisons below mean something: seeds differ, curves change over training, the
    TD3 batch really has two slices and its episodes end within every chunk."""
    for ref in (td3_reference, ppo_reference):
        a, b = (np.array(r["curve"]["eval/return"]) for r in ref["runs"][:2])
        assert not np.allclose(a, b)
    assert td3_reference["execution"]["slices"] == 2
    assert np.isfinite(td3_reference["runs"][0]["curve"]["train/episode_return"][1:]).all()
    assert np.ptp(ppo_reference["runs"][0]["curve"]["eval/return"]) > 0


@pytest.mark.parametrize("which", ["td3", "ppo"])
@pytest.mark.slow
def test_seed_in_batch_equals_single_run(which, td3_reference, ppo_reference):
    spec, ref = (TD3, td3_reference) if which == "td3" else (PPO_MJX, ppo_reference)
    single = _run_here({**spec, "seeds": [2]})
    _assert_same_curves(single, ref, runs=[2])


@pytest.mark.parametrize("which", ["td3", "ppo"])
@pytest.mark.slow
def test_sharded_over_four_devices_equals_unsharded(which, sharded, td3_reference, ppo_reference):
    ref = td3_reference if which == "td3" else ppo_reference
    rec = sharded[which]
    assert rec["execution"]["devices"] == 4 and rec["execution"]["slices"] == 1
    _assert_same_curves(rec, ref)


def test_three_seeds_on_four_devices_equal_the_batchs_first_three(sharded, td3_reference):
    rec = sharded["td3_three"]
    assert rec["execution"]["devices"] == 4 and len(rec["runs"]) == 3
    _assert_same_curves(rec, td3_reference, runs=[0, 1, 2])


def _killed(tmp_path: Path, spec: dict, ckpt: Path, hook: str, step: int, **run_kw):
    proc = _subprocess(
        tmp_path, {"run": (spec, {"checkpoint_dir": str(ckpt), **run_kw})}, **{hook: str(step)}
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])
    assert proc.records is None
    return proc


@pytest.mark.slow
def test_td3_killed_in_second_slice_resumes_identically(tmp_path, td3_reference):
    ckpt = tmp_path / "ckpt"
    # checkpoint index = slice * (num_evals + 1) + chunk: slice 1, chunk 1.
    step = 1 * (TD3["num_evals"] + 1) + 1
    _killed(tmp_path, TD3, ckpt, "RLX_TEST_KILL_AT_CHECKPOINT", step, runs_per_slice=TD3_SLICE)
    meta = _latest_meta(ckpt)
    assert (meta["position"]["slice"], meta["position"]["chunk"]) == (1, 1)
    resumed = _run_here(TD3, runs_per_slice=TD3_SLICE, checkpoint_dir=ckpt)
    assert resumed["execution"]["resumed"] is True and resumed["execution"]["slices"] == 2
    _assert_same_curves(resumed, td3_reference, exact=True)


@pytest.mark.slow
def test_td3_killed_while_writing_a_checkpoint_resumes_from_the_one_before(tmp_path, td3_reference):
    ckpt = tmp_path / "ckpt"
    step = 2  # slice 0, chunk 2
    _killed(
        tmp_path, TD3, ckpt, "RLX_TEST_KILL_IN_CHECKPOINT_WRITE", step, runs_per_slice=TD3_SLICE
    )
    # The kill landed mid-write: step 2's temporary directory holds written data, step 2 was
    # never committed, and the latest complete checkpoint is step 1.
    tmp = ckpt / f"{step}.orbax-checkpoint-tmp"
    assert tmp.is_dir() and any(p.is_file() for p in tmp.rglob("*"))
    assert not (ckpt / str(step)).exists() and (ckpt / str(step - 1)).is_dir()
    meta = _latest_meta(ckpt)
    assert (meta["position"]["slice"], meta["position"]["chunk"]) == (0, 1)
    resumed = _run_here(TD3, runs_per_slice=TD3_SLICE, checkpoint_dir=ckpt)
    assert resumed["execution"]["resumed"] is True
    _assert_same_curves(resumed, td3_reference, exact=True)


@pytest.mark.slow
def test_ppo_mjx_killed_after_a_checkpoint_resumes_identically(tmp_path, ppo_reference):
    ckpt = tmp_path / "ckpt"
    _killed(tmp_path, PPO_MJX, ckpt, "RLX_TEST_KILL_AT_CHECKPOINT", 1)
    assert _latest_meta(ckpt)["position"]["chunk"] == 1
    resumed = _run_here(PPO_MJX, checkpoint_dir=ckpt)
    assert resumed["execution"]["resumed"] is True
    _assert_same_curves(resumed, ppo_reference, exact=True)


def _latest_meta(ckpt: Path) -> dict:
    reader = RunCheckpointer(ckpt)
    try:
        meta = reader.latest_meta()
    finally:
        reader.close()
    assert meta is not None, f"no complete checkpoint in {ckpt}"
    return meta
