"""The Python API: `rlx.train` returns the final states and each run's policy, `make_train` is
the pure training function (init + scan of updates) that reproduces a runner seed, and
`configure` sets the compilation cache and matmul precision."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rlx
from rlx import algorithm, envs
from rlx import config as cfg
from rlx.errors import RlxError

TINY = {"total_steps": 384, "num_envs": 8, "unroll_length": 8, "num_minibatches": 2,
        "num_epochs": 2, "policy_hidden": (16,), "value_hidden": (16,)}  # fmt: skip


@pytest.fixture(scope="module")
def result():
    return rlx.train("ppo", "pendulum_swingup", seeds=3, overrides=TINY, num_evals=3,
                     eval_episodes=4, runs_per_slice=2, progress=False)  # fmt: skip


def test_train_returns_every_runs_final_state(result):
    assert result.runs == 3
    steps = jax.tree.leaves(result.state.update_step)[0]
    np.testing.assert_array_equal(steps, [6, 6, 6])  # 384 / 64 updates, all three runs
    a, b = (result.run_state(i).params["policy"] for i in (0, 1))
    assert not np.allclose(jax.tree.leaves(a)[0], jax.tree.leaves(b)[0])  # seeds differ
    with pytest.raises(RlxError, match="run 3 is out of range"):
        result.run_state(3)


def test_a_runs_policy_reproduces_its_recorded_evaluation(result):
    """Evaluating result.policy(run) as the runner does gives the record's last eval/return."""
    from rlx.evaluation import evaluate

    env = envs.make("pendulum_swingup")
    for run, seed in enumerate(result.record["seeds"]):
        key = jax.random.fold_in(jax.random.split(jax.random.PRNGKey(seed))[1], 3)
        ev = jax.jit(lambda k, r=run: evaluate(env, result.policy(r), k, 4, env.episode_length))(
            key
        )
        np.testing.assert_allclose(
            ev["eval/return"], result.record["runs"][run]["final"]["eval/return"], rtol=1e-4
        )


@pytest.mark.slow
def test_make_train_reproduces_the_runner_seed(result):
    algo = algorithm.get("ppo")
    config = cfg.as_leaves(algo.make_config(**TINY))
    train_fn = rlx.make_train("ppo", "pendulum_swingup", config)
    keys = jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s))[0])(np.arange(3))
    states, metrics = jax.jit(jax.vmap(train_fn))(keys)
    assert metrics["loss/value"].shape == (3, 6)  # per update
    for mine, theirs in zip(jax.tree.leaves(states.params), jax.tree.leaves(result.state.params),
                            strict=True):  # fmt: skip
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)


def test_configure_sets_cache_and_precision(tmp_path):
    before = jax.config.jax_default_matmul_precision
    try:
        rlx.configure(matmul_precision="highest")
        assert jax.config.jax_default_matmul_precision == "highest"
        with pytest.raises(RlxError, match="matmul_precision must be one of"):
            rlx.configure(matmul_precision="float64")
    finally:
        jax.config.update("jax_default_matmul_precision", before)
    cache = jax.config.jax_compilation_cache_dir
    try:
        rlx.configure(compilation_cache=tmp_path)
        assert jax.config.jax_compilation_cache_dir == str(tmp_path)
    finally:
        jax.config.update("jax_compilation_cache_dir", cache)
