"""Assets through the runner: a dataset is placed once and shared by every run of a batch (its
memory does not grow with the seeds), its identity (path, content hash) is in the record and the
plan hash, seed i of a batch reproduces the single run, and behaviour cloning learns from it."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rlx
from rlx import runner
from rlx.data import datasets
from rlx.runner import execute

SMALL = {"total_steps": 1500, "grad_steps_per_update": 250, "batch_size": 64, "hidden": (64, 64),
         "learning_rate": 1e-3}  # fmt: skip


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "demos.npz"
    data = datasets.collect_baseline_dataset("pendulum_swingup", 64, noise=0.2, seed=0)
    return datasets.save_npz(path, data)


@pytest.fixture(scope="module")
def batch_of_three(demos):
    return rlx.run("bc", "pendulum_swingup", seeds=3, overrides=SMALL, num_evals=2,
                   eval_episodes=8, assets={"dataset": demos}, progress=False)  # fmt: skip


@pytest.mark.slow
def test_bc_learns_through_the_runner(batch_of_three):
    returns = np.array([r["curve"]["eval/return"] for r in batch_of_three["runs"]])
    assert (returns[:, 0] < -1300).all()  # untrained
    assert (returns[:, -1] > -800).all(), returns
    assert batch_of_three["budget"]["unit"] == "gradient_steps"
    assert batch_of_three["runs"][0]["curve"]["gradient_steps"] == [0, 750, 1500]


@pytest.mark.slow
def test_seed_in_batch_reproduces_the_single_run(demos):
    # batched and single matmuls sum in different orders (~1e-7 apart), which the chaotic
    # pendulum amplifies in the evaluation returns: a short budget, a tolerance far below the
    # spread between seeds
    kw = dict(overrides={**SMALL, "total_steps": 100, "grad_steps_per_update": 50},
              num_evals=2, eval_episodes=4, assets={"dataset": demos}, progress=False)  # fmt: skip
    batch = rlx.run("bc", "pendulum_swingup", seeds=3, **kw)
    single = rlx.run("bc", "pendulum_swingup", seeds=[1], **kw)
    assert set(single["runs"][0]["curve"]) == set(batch["runs"][1]["curve"])
    for key, values in single["runs"][0]["curve"].items():
        np.testing.assert_allclose(batch["runs"][1]["curve"][key], values, rtol=1e-3)
    assert not np.allclose(batch["runs"][0]["curve"]["loss/bc"][1:],
                           batch["runs"][1]["curve"]["loss/bc"][1:], rtol=1e-2)  # fmt: skip


def test_asset_identity_is_recorded_and_hashed(batch_of_three, demos, tmp_path):
    identity = batch_of_three["assets"]["dataset"]
    assert identity["path"] == str(demos.resolve()) and len(identity["sha256"]) == 64
    other = datasets.save_npz(
        tmp_path / "other.npz",
        datasets.collect_baseline_dataset("pendulum_swingup", 16, noise=0.3, seed=0),
    )
    plans = [
        runner.plan("bc", "pendulum_swingup", overrides=SMALL, num_evals=2,
                    assets={"dataset": path})
        for path in (demos, other)
    ]  # fmt: skip
    assert runner.plan_hash(plans[0]) != runner.plan_hash(plans[1])
    assert batch_of_three["config_hash"] == runner.plan_hash(
        runner.plan("bc", "pendulum_swingup", seeds=3, overrides=SMALL, num_evals=2,
                    eval_episodes=8, assets={"dataset": demos})
    )  # fmt: skip


def _programs(demos, seeds: int):
    rp = runner.plan("bc", "pendulum_swingup", seeds=seeds, overrides=SMALL, num_evals=2,
                     assets={"dataset": demos})  # fmt: skip
    batch = execute.Batch.make(rp, jax.devices(), None)
    return batch, batch.programs_for(list(range(seeds)))


@pytest.mark.slow
def test_dataset_memory_does_not_grow_with_seeds(demos):
    """The chunk program's arguments hold one dataset however many runs: going from 1 to 16
    seeds adds 15 per-run states and nothing else."""
    batch, one = _programs(demos, 1)
    _, sixteen = _programs(demos, 16)
    used = batch.assets["dataset"]  # BC reads observations and actions; XLA drops the rest
    data_bytes = used["observations"].nbytes + used["actions"].nbytes
    state_bytes = sum(np.prod(s.shape) * s.dtype.itemsize for s in jax.tree.leaves(one.state_spec))
    args = [p.chunk.memory_analysis().argument_size_in_bytes for p in (one, sixteen)]
    assert args[0] == data_bytes + state_bytes
    assert args[1] - args[0] == 15 * state_bytes
    assert state_bytes < data_bytes  # the dataset is not part of the per-run state
