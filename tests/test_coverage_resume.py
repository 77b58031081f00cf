"""Resume equality for algorithms that read assets: behaviour cloning (a dataset) and HABC (a
pretrained policy). A run SIGKILLed right after its third checkpoint (evaluation points 0, 1
and 2 of 3 done) resumes from there to the same curves.csv as the uninterrupted run, and its
record says it resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import jax
import pytest

import rlx
from rlx.data import datasets
from rlx.provenance import provenance
from rlx.runner import session

CACHE = str(jax.config.jax_compilation_cache_dir)  # the tests' (conftest.py)
CASES = {
    "bc": dict(env="pendulum_swingup", asset="dataset",
               overrides={"total_steps": 60, "grad_steps_per_update": 10, "batch_size": 16,
                          "hidden": (16,)}),
    "habc": dict(env="squeeze_lift_l1", asset="pretrained",
                 overrides={"total_steps": 24, "num_envs": 8, "critic_hidden": (16,),
                            "critic_steps": 2, "policy_steps": 2, "batch_size": 16}),
}  # fmt: skip
PLAN = {"seeds": 2, "num_evals": 3, "eval_episodes": 4}
_KILLED = """
import json, sys
import rlx
from rlx.provenance import provenance

algo, env, overrides, assets, plan = json.loads(sys.argv[2])
rlx.configure(compilation_cache=sys.argv[3])
started = {**provenance(), "git": "0123456789ab", "diff_sha256": None}
rlx.train(algo, env, overrides=overrides, assets=assets, progress=False, out=sys.argv[1],
          started=started, **plan)
"""


def _fixed_code() -> dict:
    """A provenance whose code identity stays the same while the working tree changes."""
    return {**provenance(), "git": "0123456789ab", "diff_sha256": None}


@pytest.fixture(scope="module")
def asset_paths(tmp_path_factory, sft) -> dict[str, str]:
    """A small pendulum demonstration dataset and the squeeze-lift SFT policy."""
    path = tmp_path_factory.mktemp("data") / "demos.npz"
    data = datasets.collect_baseline_dataset("pendulum_swingup", 4, 50, noise=0.1, seed=0)
    return {"dataset": str(datasets.save_npz(path, data)), "pretrained": str(sft)}


@pytest.mark.slow
@pytest.mark.parametrize("algo", list(CASES))
def test_a_killed_asset_reading_run_resumes_to_the_uninterrupted_curves(
    algo, asset_paths, tmp_path
):
    case = CASES[algo]
    assets = {case["asset"]: asset_paths[case["asset"]]}
    overrides = {k: list(v) if isinstance(v, tuple) else v for k, v in case["overrides"].items()}
    common = dict(overrides=overrides, assets=assets, progress=False, started=_fixed_code(),
                  **PLAN)  # fmt: skip
    straight = tmp_path / "straight"
    rlx.train(algo, case["env"], out=straight, **common)
    out = tmp_path / "run"
    spec = json.dumps([algo, case["env"], overrides, assets, PLAN])
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED, str(out), spec, CACHE],
        env={**os.environ, "RLX_TEST_KILL_AT_CHECKPOINT": "2"}, capture_output=True,
        timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists() and (session.partial_dir(out) / "curves.csv").exists()
    result = rlx.train(algo, case["env"], out=out, **common)
    assert result.record["execution"]["resumed"] is True
    assert (out / "curves.csv").read_text() == (straight / "curves.csv").read_text()
