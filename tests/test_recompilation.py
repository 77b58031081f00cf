"""No recompilation and no type drift in any registered algorithm's training state.

The runner compiles one chunk of updates and feeds each chunk's output state into the next: if
`update` returned a leaf of another dtype, shape or weak type than it received (a counter that
became a Python float, an int that became a float, a weakly typed constant stored in the
state), a `jax.jit` caller would silently retrace and recompile every chunk, and an
ahead-of-time compiled executable would refuse the state. For every algorithm in the registry,
a `jit` of a `lax.scan` of 2 updates is called twice, the second time on the first call's
output, and must trace once and return exactly the signature it was given.
"""

from __future__ import annotations

import jax
import pytest
from smoke import smoke_jit

from rlx import algorithm, envs
from rlx import config as cfg

# Tiny settings, applied where the algorithm's Config has the field: 4 envs x 4 steps per
# update, one-layer networks of width 8, a 64-row replay ring that is sampled from the start.
TINY = dict(
    total_steps=64,
    num_envs=4,
    unroll_length=4,
    num_minibatches=2,
    num_epochs=1,
    policy_hidden=(8,),
    value_hidden=(8,),
    critic_hidden=(8,),
    action_samples=2,
    hidden=(8,),
    batch_size=8,
    buffer_size=64,
    learning_starts=0,
    length_window=4,
    grad_steps_per_update=4,
    actor_hidden=(8,),
    latent_dim=8,
)
GOAL_CONDITIONED = ("trl", "gciql", "gcivl", "qrl", "crl", "gcbc")


def _env_name(name: str) -> str:
    """Per-action-dimension baselines need an action of size >= 2; the others run on the
    pendulum, which has the baseline controller agency/residual/baseline need."""
    if name in GOAL_CONDITIONED:
        return "pointmaze_medium"
    if name == "fpg_oracle":
        return "target_matching_bandit_m6"
    if "pretrained" in algorithm.get(name).assets:  # habc and its baselines
        return "squeeze_lift_l1"
    return (
        "target_matching_m6" if name.startswith(("fpg_", "factorized_pg")) else "pendulum_swingup"
    )


def _signature(tree):
    """Tree structure (static config fields included) and (shape, dtype, weak_type) per leaf."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, [
        (jax.typeof(x).shape, jax.typeof(x).dtype, jax.typeof(x).weak_type) for x in leaves
    ]


def _diff(before, after) -> list[str]:
    """Human-readable leaf differences between two signatures of the same structure."""
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(before)[0]]
    return [
        f"{path}: {a} -> {b}"
        for path, a, b in zip(paths, _signature(before)[1], _signature(after)[1], strict=False)
        if a != b
    ]


def _assets(algo):
    """A tiny demonstration dataset for algorithms that read one (bc), a tiny navigate dataset
    for the goal-conditioned ones, a fresh policy for HABC's, else None."""
    if not algo.assets:
        return None
    from rlx.data import datasets

    if "pretrained" in algo.assets:  # a fresh width-8 policy in the pretrained asset's form
        from rlx.algos.bc import TanhPolicy

        from rlx.learn import normalizer

        net = TanhPolicy((8,), 4)
        return {"pretrained": {
            "policy": net.init(jax.random.PRNGKey(1), jax.numpy.zeros((9,))),
            "obs_stats": normalizer.as_dict(normalizer.init(9)),
            "architecture": {"activation": jax.numpy.int32(1)},
        }}  # fmt: skip

    if algo.name in GOAL_CONDITIONED:
        from rlx.envs.maze import Maze
        from rlx.envs.pointmaze_data import navigate

        from rlx.data import trajectories

        rows = navigate(Maze.named("medium"), jax.random.PRNGKey(0), 2, 8, 0.5)
        data = trajectories.arrays(rows, rows["observations"])
        return {"dataset": jax.tree.map(jax.numpy.asarray, data)}

    data = datasets.collect_baseline_dataset("pendulum_swingup", 2, episode_length=8)
    return {"dataset": jax.tree.map(jax.numpy.asarray, data)}


def _tiny(name: str):
    """The algorithm `name` with TINY settings on its env: (record, env, config with its
    hyperparameters as float32 leaves, as the runner passes them, assets)."""
    algo = algorithm.get(name)
    env = envs.make(_env_name(name))
    known = cfg.fields(algo.Config)
    config = algo.make_config(**{k: v for k, v in TINY.items() if k in known})
    config.validate()
    algo.check_env(env, config)
    return algo, env, cfg.as_leaves(config), _assets(algo)


@pytest.mark.parametrize("name", list(algorithm.ALGORITHMS))
def test_every_algorithms_update_traces_with_its_state_signature(name):
    """The fast tier's check of every registered algorithm: init and one update traced
    (`jax.eval_shape`: nothing is compiled or run) return the state's exact signature."""
    algo, env, config, assets = _tiny(name)
    state0 = jax.eval_shape(lambda key: algo.init(key, env, config, assets), jax.random.PRNGKey(0))
    state1, metrics = jax.eval_shape(lambda s: algo.update(env, s, assets), state0)
    assert _signature(state1) == _signature(state0), _diff(state0, state1)
    assert metrics and all(m.shape == () for m in metrics.values()), metrics


@pytest.mark.parametrize("name", list(algorithm.ALGORITHMS))
@pytest.mark.slow
def test_update_keeps_the_state_signature_and_traces_once(name):
    algo, env, config, assets = _tiny(name)

    state0 = smoke_jit(lambda key: algo.init(key, env, config, assets))(jax.random.PRNGKey(0))
    traces = []

    @smoke_jit
    def two_updates(state):
        traces.append(1)

        def body(s, _):
            return algo.update(env, s, assets)

        return jax.lax.scan(body, state, None, length=2)

    state1, metrics = two_updates(state0)
    state2, _ = two_updates(state1)
    jax.block_until_ready(state2)

    assert _signature(state1)[0] == _signature(state0)[0], "the state's tree structure changed"
    assert _signature(state1) == _signature(state0), _diff(state0, state1)
    assert _signature(state2) == _signature(state0), _diff(state0, state2)
    assert len(traces) == 1, f"{name}: traced {len(traces)} times for 2 calls"
    # One update alone (not only the scan, which reconciles its carry) keeps the signature.
    one = jax.eval_shape(lambda s: algo.update(env, s, assets)[0], state0)
    assert _signature(one) == _signature(state0), _diff(state0, one)
    for key, value in metrics.items():
        assert value.shape == (2,), (key, value.shape)
    if name in GOAL_CONDITIONED:  # losses over a real (tiny) navigate dataset stay finite
        bad = [k for k, v in metrics.items() if not jax.numpy.isfinite(v).all()]
        assert not bad, bad
