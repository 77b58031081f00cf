"""Export and evaluation round-trips for every algorithm family and a Brax artifact:
``rlx.train(..., out=, export=)`` of one run at a tiny budget, then `rlx.load_policy` acts on an
observation of the artifact's size and ``rlx eval`` with the run's own seed and ``--episodes``
equal to its ``eval_episodes`` reproduces the run's last recorded evaluation (PPO's round trip
is in tests/test_policy.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlx
from rlx import cli
from rlx.data import recipes

OFF = {"num_envs": 4, "unroll_length": 4, "utd_ratio": 0.5, "batch_size": 16, "hidden": (16,),
       "learning_starts": 32, "total_steps": 256}  # fmt: skip
CASES: dict[str, dict[str, Any]] = {
    # family: algorithm, env, overrides, env kwargs, asset names, evaluation episodes
    "offpolicy": dict(algo="sac", env="pendulum_swingup", overrides=OFF, episodes=4),
    "agency": dict(algo="agency_td3", env="pendulum_swingup",
                   overrides={**OFF, "unroll_length": 2, "utd_ratio": 1.0}, episodes=4),
    "offline_gc": dict(algo="gcbc", env="pointmaze_medium", assets=("dataset",), episodes=5,
                       overrides={"total_steps": 40, "grad_steps_per_update": 20,
                                  "batch_size": 16, "actor_hidden": (16,)}),
    "finetune": dict(algo="habc", env="squeeze_lift_l1", assets=("pretrained",), episodes=8,
                     overrides={"total_steps": 16, "num_envs": 8, "critic_hidden": (16,),
                                "critic_steps": 2, "policy_steps": 2, "batch_size": 16}),
    "factorized": dict(algo="factorized_pg", env="target_matching_m6", episodes=4,
                       overrides={"total_steps": 256, "num_envs": 8, "unroll_length": 16,
                                  "num_minibatches": 2, "num_epochs": 1,
                                  "policy_hidden": (16,), "value_hidden": (16,),
                                  "critic_hidden": (16,), "action_samples": 2}),
    # Brax's spring backend: the cheapest to compile (positional took 155 s, spring about 30 s).
    "brax": dict(algo="ppo", env="brax:inverted_pendulum", env_kwargs={"backend": "spring"},
                 episodes=2, overrides={"total_steps": 128, "num_envs": 4, "unroll_length": 8,
                                        "num_minibatches": 2, "num_epochs": 1,
                                        "policy_hidden": (16,), "value_hidden": (16,),
                                        "episode_length": 48}),
}  # fmt: skip
SEED = 3


@pytest.fixture(scope="module")
def asset_paths(tmp_path_factory, sft) -> dict[str, Path]:
    """The assets the cases read: a small point-maze dataset and the squeeze-lift SFT policy."""
    data = recipes.make("pointmaze-medium-navigate", tmp_path_factory.mktemp("gc") / "d",
                        recipes.Options(seed=3, episodes=4, steps=101))  # fmt: skip
    return {"dataset": data, "pretrained": sft}


@pytest.fixture(autouse=True)
def _test_cache(monkeypatch):
    """`rlx eval` sets JAX's compilation cache: keep it the tests' one."""
    monkeypatch.setenv("RLX_COMPILATION_CACHE", str(jax.config.jax_compilation_cache_dir))


@pytest.mark.slow
@pytest.mark.parametrize("family", list(CASES))
def test_export_load_and_eval_reproduce_the_last_evaluation(family, request, tmp_path):
    case = CASES[family]
    names = case.get("assets", ())
    paths = request.getfixturevalue("asset_paths") if names else {}  # built only when read
    assets = {name: str(paths[name]) for name in names}
    rlx.train(case["algo"], case["env"], seeds=[SEED], overrides=case["overrides"],
              env_kwargs=case.get("env_kwargs"), assets=assets or None, num_evals=1,
              eval_episodes=case["episodes"], progress=False, out=tmp_path / "run",
              export=tmp_path / "policies")  # fmt: skip
    artifact = tmp_path / "policies" / "run-0"
    meta = json.loads((artifact / "policy.json").read_text())
    assert (meta["algorithm"], meta["env"], meta["run"]["seed"]) == (
        case["algo"],
        case["env"],
        SEED,
    )
    act = rlx.load_policy(artifact)
    obs = jnp.zeros((3, meta["observation_size"]), jnp.float32)
    action = jax.vmap(lambda o: act(o, jax.random.PRNGKey(0), True))(obs)
    assert action.shape == (3, meta["action_size"])
    assert bool(jnp.isfinite(action).all()) and float(jnp.abs(action).max()) <= 1.0
    out = tmp_path / "eval.json"
    argv = ["eval", str(artifact), "--episodes", str(case["episodes"]), "--out", str(out)]
    assert cli.main(argv) == 0
    evaluated = json.loads(out.read_text())["metrics"]
    final = json.loads((tmp_path / "run" / "record.json").read_text())["runs"][0]["final"]
    for name in ("eval/return", "eval/goal_reached"):
        if name in final:
            np.testing.assert_allclose(evaluated[name], final[name], rtol=1e-5, err_msg=name)
