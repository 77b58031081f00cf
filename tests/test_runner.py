"""The runner: batched seeds reproduce single runs, grids match single-hyperparameter runs, no
recompilation across chunks, slices change nothing, and the run record is complete. (Sharding
over devices, padding included, is compared curve by curve in test_equivalence.)"""

from __future__ import annotations

import json
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlx
from rlx import cli, runner
from rlx.runner import execute

# A tiny PPO: 8 envs x 8 steps per update, 2 updates per chunk, 3 chunks.
TINY = dict(
    num_envs=8,
    unroll_length=8,
    num_minibatches=2,
    num_epochs=2,
    policy_hidden=(16,),
    value_hidden=(16,),
)
STEPS = 8 * 8 * 6


def _run(**kw):
    kw["overrides"] = {"total_steps": STEPS, **kw.get("overrides", TINY)}
    return rlx.run(
        "ppo",
        "pendulum_swingup",
        num_evals=3,
        eval_episodes=4,
        progress=False,
        **kw,
    )


def _curves(record, key="eval/return"):
    return np.array([r["curve"][key] for r in record["runs"]])


@pytest.fixture(scope="module")
def batch_of_four():
    return _run(seeds=4)


@pytest.mark.slow
def test_seed_in_batch_reproduces_single_run(batch_of_four):
    single = _run(seeds=[2])
    np.testing.assert_allclose(_curves(batch_of_four)[2], _curves(single)[0], rtol=1e-5)
    np.testing.assert_allclose(
        _curves(batch_of_four, "loss/value")[2], _curves(single, "loss/value")[0], rtol=1e-4
    )
    # and different seeds differ
    assert not np.allclose(_curves(batch_of_four)[0], _curves(batch_of_four)[1])


def test_compiled_chunk_refuses_a_state_whose_dtypes_drifted():
    """The chunk program is compiled ahead of time for the init state's exact signature: a
    state whose dtype (or weak type) drifted is an error, never a silent recompile."""
    rp = runner.plan("ppo", "pendulum_swingup", seeds=2, num_evals=3, eval_episodes=2,
                     overrides={**TINY, "total_steps": STEPS})  # fmt: skip
    batch = execute.Batch.make(rp, jax.devices(), None)
    programs = batch.programs_for([0, 1])
    state = programs.init(*batch.inputs([0, 1]), batch.assets)
    state, _ = programs.chunk(state, batch.assets)  # its own output is accepted
    drifted = state.replace(update_step=state.update_step.astype(jnp.float32))
    with pytest.raises((TypeError, ValueError)):
        programs.chunk(drifted, batch.assets)
    weak = state.replace(key=state.key, update_step=state.update_step + 0)  # same dtype: fine
    programs.chunk(weak, batch.assets)
    weakly = jax.tree.map(lambda x: x, state).replace(
        config=state.config.replace(gamma=jax.vmap(lambda g: g * 1.0)(state.config.gamma))
    )
    programs.chunk(weakly, batch.assets)


def test_curves_have_one_point_per_evaluation(batch_of_four):
    assert len(batch_of_four["runs"][0]["curve"]["env_steps"]) == 4  # step 0 + 3 chunks


def test_grid_point_matches_single_hyperparameter_run():
    grid = _run(seeds=[0, 1], grid={"learning_rate": [1e-3, 3e-3]})
    points = [r["grid_point"] for r in grid["runs"]]
    assert points == [{"learning_rate": 1e-3}] * 2 + [{"learning_rate": 3e-3}] * 2
    single = _run(seeds=[1], overrides={**TINY, "learning_rate": 3e-3})
    np.testing.assert_allclose(_curves(grid)[3], _curves(single)[0], rtol=1e-5)


@pytest.mark.slow
def test_slices_give_the_same_numbers(batch_of_four):
    sliced = _run(seeds=4, runs_per_slice=3)
    assert sliced["execution"]["slices"] == 2
    np.testing.assert_allclose(_curves(sliced), _curves(batch_of_four), rtol=1e-5)


def test_record_contents(batch_of_four):
    rec = batch_of_four
    assert rec["timing"]["env_steps_total"] == 4 * STEPS
    assert rec["timing"]["env_steps_per_s"] > 0 and rec["timing"]["compile_s"] > 0
    prov = rec["provenance"]
    assert {"jax", "flax", "brax", "mujoco-mjx"} <= set(prov["versions"])
    assert prov["hardware"]["backend"] == "cpu" and prov["git"] and prov["matmul_precision"]
    for run in rec["runs"]:
        assert run["curve"]["env_steps"] == [0, 128, 256, 384]
        assert (
            np.isnan(run["curve"]["loss/value"][0])
            and np.isfinite(run["curve"]["loss/value"][1:]).all()
        )
    json.dumps(rec)


def test_train_command_writes_a_run_record(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--algo", "ppo", "--env", "pendulum_swingup", "--seeds", "2",
            "--total-steps", str(STEPS), "--num-evals", "3", "--eval-episodes", "2", "--quiet",
            "--out", str(out)]  # fmt: skip
    for key, value in TINY.items():
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        args += ["--set", f"{key}={text}"]
    assert cli.main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "curves.csv",
        "final.csv",
        "record.json",
        "summary.md",
    ]
    summary = (out / "summary.md").read_text()
    assert "| env steps | eval return | goal rate |" in summary and "| 384 |" in summary
    assert len((out / "curves.csv").read_text().splitlines()) == 1 + 2 * 4
    assert "final eval return" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary directory left behind


@pytest.mark.slow
def test_slice_size_is_halved_until_the_chunk_fits_a_faked_memory_limit(monkeypatch):
    """With a device that holds a 2-run chunk but not a 4-run one, 8 runs go 8 -> 4 -> 2 and
    run as 4 slices, with the numbers of the unsliced batch."""
    from rlx.runner import programs

    rp = runner.plan("ppo", "pendulum_swingup", seeds=8, num_evals=3, eval_episodes=4,
                     overrides={**TINY, "total_steps": STEPS})  # fmt: skip
    probe = execute.Batch.make(rp, jax.devices(), None)
    need = {n: programs.chunk_bytes(probe.programs_for(list(range(n)))) for n in (2, 4)}
    assert need[2] < need[4]
    monkeypatch.setattr(programs, "device_memory_limit", lambda devices: need[2] / 0.9 + 1)
    sliced = runner.run(rp, progress=False)
    assert sliced["execution"]["runs_per_slice"] == 2 and sliced["execution"]["slices"] == 4
    monkeypatch.undo()
    whole = runner.run(rp, progress=False)
    assert whole["execution"]["slices"] == 1
    for a, b in zip(sliced["runs"], whole["runs"], strict=True):
        for key, values in a["curve"].items():
            np.testing.assert_allclose(values, b["curve"][key], rtol=1e-5, atol=1e-6)


def test_cpu_pool_hazard_is_named_for_several_local_cpu_devices_calling_lapack():
    from rlx.runner.programs import cpu_pool_hazard

    def dev(platform: str, process: int = 0) -> SimpleNamespace:
        return SimpleNamespace(platform=platform, process_index=process)

    cholesky = jax.jit(jnp.linalg.cholesky).lower(jnp.eye(3)).compile().as_text
    assert "2 CPU devices" in cpu_pool_hazard([dev("cpu"), dev("cpu")], cholesky)
    assert cpu_pool_hazard([dev("cpu")], cholesky) is None
    assert cpu_pool_hazard([dev("cpu"), dev("cpu", process=1)], cholesky) is None
    assert cpu_pool_hazard([dev("gpu"), dev("gpu")], cholesky) is None
    assert cpu_pool_hazard([dev("cpu"), dev("cpu")], lambda: "dot(f32[3,3] a, b)") is None


@pytest.mark.slow
def test_python_api_forwards_every_runner_keyword(tmp_path):
    seen = []
    rec = _run(seeds=1, checkpoint_dir=tmp_path / "ck", callback=lambda s, m: seen.append(s))
    assert seen == [0, 128, 256, 384]
    assert (tmp_path / "ck").is_dir()  # the checkpoints went where they were asked to
    assert rec["provenance"]["command"] and "environment" in rec["provenance"]
    with pytest.raises(TypeError, match=r"unexpected keyword.*checkpoint_dri"):
        _run(seeds=1, checkpoint_dri=tmp_path)


@pytest.mark.slow
def test_resume_across_code_revisions_is_refused_unless_accepted(tmp_path):
    from rlx.errors import RlxError

    ckpt = tmp_path / "ck"
    first = _run(seeds=1, checkpoint_dir=ckpt, started={**_started(), "git": "aaaa"})
    assert not first["execution"]["resumed"]  # the finished run's last checkpoint stays
    with pytest.raises(RlxError, match=r"unfinished run of code aaaa \(this is bbbb\)"):
        _run(seeds=1, checkpoint_dir=ckpt, started={**_started(), "git": "bbbb"})
    again = _run(seeds=1, checkpoint_dir=ckpt, started={**_started(), "git": "bbbb"},
                 accept_revision_change=True)  # fmt: skip
    assert again["execution"]["resumed_from_code"] == "aaaa"


def _started():
    from rlx.provenance import provenance

    return {**provenance(), "diff_sha256": None}


def test_a_checkpoint_without_code_identity_is_refused(tmp_path):
    """A checkpoint whose meta names no code (written before provenance was recorded) cannot
    be trusted to match this code: one clear error, not a KeyError."""
    from rlx.errors import RlxError
    from rlx.runner.checkpoint import RunCheckpointer

    ckpt = tmp_path / "ck"
    _run(seeds=1, checkpoint_dir=ckpt)
    store = RunCheckpointer(ckpt)
    meta = store.latest_meta()
    state_leaves = {"x": jnp.zeros(3)}
    store.save(99, state_leaves, {k: v for k, v in meta.items() if k != "code"})
    store.close()
    with pytest.raises(RlxError, match="written by an older rlx"):
        _run(seeds=1, checkpoint_dir=ckpt)
