"""Datasets (collector, writer, loader, asset checks) and behaviour cloning (loss, config, state,
learning on baseline-controller demonstrations of pendulum swing-up)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.base import Env, State
from rlx.algos import bc
from rlx.envs import make

from rlx import algorithm
from rlx import config as cfg
from rlx.data import assets
from rlx.data.datasets import (
    DATASET,
    FIELDS,
    collect,
    collect_baseline_dataset,
    load_dataset,
    save_npz,
)
from rlx.errors import RlxError
from rlx.evaluation import evaluate

THRESHOLD = -800.0  # the untrained policy scores about -1790, the baseline controller about -300


class Countdown(Env):
    """obs = [t], reward = t after step t, terminates when t reaches 3 (a toy with early ends)."""

    @property
    def observation_size(self) -> int:
        return 1

    @property
    def action_size(self) -> int:
        return 1

    @property
    def backend(self) -> str:
        return "jax"

    def reset(self, rng: jax.Array) -> State:
        zero = jnp.zeros((), jnp.float32)
        return State(zero, zero[None], zero, zero, {}, {})

    def step(self, state: State, action: jax.Array) -> State:
        t = state.pipeline_state + 1.0
        return state.replace(pipeline_state=t, obs=t[None], reward=t, done=(t >= 3).astype(t.dtype))


def _zero_act(obs, key, deterministic):
    return jnp.zeros((1,), jnp.float32)


def test_collect_marks_episode_ends_terminations_and_next_observations():
    data = jax.jit(lambda k: collect(Countdown(), _zero_act, k, 2, 5))(jax.random.PRNGKey(0))
    assert set(data) == set(FIELDS)
    assert data["observations"].shape == (10, 1) and data["actions"].shape == (10, 1)
    assert all(data[f].shape == (10,) for f in ("rewards", "terminals", "masks"))
    # Per window: t = 0, 1, 2 (terminates at 3, resets), 0, 1 (cut at the window's end).
    window = {
        "observations": [0, 1, 2, 0, 1],
        "next_observations": [1, 2, 3, 1, 2],
        "rewards": [1, 2, 3, 1, 2],
        "terminals": [0, 0, 1, 0, 1],
        "masks": [1, 1, 0, 1, 1],
    }
    for name, want in window.items():
        np.testing.assert_array_equal(np.asarray(data[name]).reshape(-1), want * 2, err_msg=name)
    # A time limit of 2 steps: the episode is truncated, not terminated (mask 1).
    short = jax.jit(lambda k: collect(Countdown(), _zero_act, k, 1, 2))(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(short["terminals"], [0, 1])
    np.testing.assert_array_equal(short["masks"], [1, 1])


def test_collect_baseline_dataset_on_pendulum():
    env = make("pendulum_swingup")
    data = collect_baseline_dataset("pendulum_swingup", episodes=3, episode_length=4, seed=1)
    assert {k: v.shape for k, v in data.items()} == {
        "observations": (12, 3),
        "actions": (12, 1),
        "next_observations": (12, 3),
        "rewards": (12,),
        "terminals": (12,),
        "masks": (12,),
    }
    np.testing.assert_array_equal(data["terminals"], [0, 0, 0, 1] * 3)
    np.testing.assert_array_equal(data["masks"], np.ones(12))  # time limits only, never terminal
    episodes = lambda x: x.reshape(3, 4, -1)  # noqa: E731
    np.testing.assert_array_equal(
        episodes(data["next_observations"])[:, :-1], episodes(data["observations"])[:, 1:]
    )
    np.testing.assert_allclose(data["actions"], env.baseline_policy(data["observations"]))
    noisy = collect_baseline_dataset("pendulum_swingup", 3, 4, noise=0.5, seed=1)
    assert np.abs(noisy["actions"] - env.baseline_policy(noisy["observations"])).max() > 0.05
    assert np.abs(noisy["actions"]).max() <= 1.0


def test_collect_baseline_dataset_refuses_bad_arguments():
    with pytest.raises(RlxError, match="noise"):
        collect_baseline_dataset("pendulum_swingup", 2, 4, noise=-0.1)
    with pytest.raises(RlxError, match="episodes"):
        collect_baseline_dataset("pendulum_swingup", 0, 4)


def _tiny_dataset(rows: int = 6, obs: int = 3, act: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "observations": rng.normal(size=(rows, obs)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(rows, act)).astype(np.float32),
        "next_observations": rng.normal(size=(rows, obs)).astype(np.float32),
        "rewards": rng.normal(size=rows).astype(np.float32),
        "terminals": np.zeros(rows, np.float32),
        "masks": np.ones(rows, np.float32),
    }


def test_save_npz_round_trip_leaves_no_temporary_file(tmp_path):
    data = _tiny_dataset()
    path = save_npz(tmp_path / "sub" / "d.npz", data)
    assert [p.name for p in path.parent.iterdir()] == ["d.npz"]
    loaded = load_dataset(path)
    assert set(loaded) == set(FIELDS)
    for name, x in data.items():
        np.testing.assert_array_equal(loaded[name], x)


def test_loader_refuses_missing_corrupt_and_incomplete_files(tmp_path):
    with pytest.raises(RlxError, match="cannot read"):
        load_dataset(tmp_path / "absent.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(RlxError, match="cannot read"):
        load_dataset(corrupt)
    incomplete = {k: v for k, v in _tiny_dataset().items() if k != "masks"}
    with pytest.raises(RlxError, match=r"lacks the field.*masks"):
        load_dataset(save_npz(tmp_path / "incomplete.npz", incomplete))
    mismatch = {**_tiny_dataset(), "next_observations": np.zeros((6, 4), np.float32)}
    with pytest.raises(RlxError, match="next_observations"):
        load_dataset(save_npz(tmp_path / "mismatch.npz", mismatch))
    nan = {**_tiny_dataset(), "rewards": np.array([0, 1, np.nan, 0, 0, 0], np.float32)}
    with pytest.raises(RlxError, match="non-finite values in rewards"):
        load_dataset(save_npz(tmp_path / "nan.npz", nan))
    with pytest.raises(RlxError, match="does not exist"):
        assets.resolve({"dataset": DATASET}, {"dataset": tmp_path / "absent.npz"}, None, None)


def test_dataset_asset_refuses_widths_that_do_not_fit_the_env(tmp_path):
    env = make("pendulum_swingup")  # observation width 3, action width 1
    specs = {"dataset": DATASET}
    good = save_npz(tmp_path / "good.npz", _tiny_dataset(obs=3, act=1))
    assert set(assets.resolve(specs, {"dataset": good}, env, None)) == {"dataset"}
    wide_obs = save_npz(tmp_path / "obs.npz", _tiny_dataset(obs=5, act=1))
    with pytest.raises(RlxError, match=r"observations have shape \(6, 5\).*width is 3"):
        assets.resolve(specs, {"dataset": wide_obs}, env, None)
    wide_act = save_npz(tmp_path / "act.npz", _tiny_dataset(obs=3, act=2))
    with pytest.raises(RlxError, match=r"actions have shape \(6, 2\).*width is 1"):
        assets.resolve(specs, {"dataset": wide_act}, env, None)


def test_bc_loss_against_hand_computed_values():
    predicted = jnp.array([[0.5, -1.0], [0.0, 0.25]])
    target = jnp.array([[0.0, 0.0], [1.0, 0.25]])
    want = (0.5**2 + 1.0**2 + 1.0**2 + 0.0**2) / 4  # 0.5625
    assert float(bc.bc_loss(predicted, target)) == pytest.approx(want)
    assert float(jax.jit(bc.bc_loss)(predicted, target)) == pytest.approx(want)
    with pytest.raises(AssertionError):
        bc.bc_loss(predicted, target[:, :1])


def test_sample_batch_keeps_rows_together_and_covers_the_dataset():
    rows = np.arange(8, dtype=np.float32)
    dataset = {"observations": rows[:, None], "actions": 10.0 * rows[:, None]}
    obs, actions = jax.jit(lambda k: bc.sample_batch(dataset, k, 4096))(jax.random.PRNGKey(0))
    assert obs.shape == (4096, 1) and actions.shape == (4096, 1)
    np.testing.assert_array_equal(actions, 10.0 * obs)
    counts = np.bincount(np.asarray(obs[:, 0], dtype=int), minlength=8)
    assert counts.min() > 400 and counts.max() < 624, counts  # 512 expected per row


def test_config_budget_and_registry():
    config = bc.Config(total_steps=1000, grad_steps_per_update=250)
    assert (config.steps_per_update, config.num_updates) == (250, 4)
    config.validate()
    with pytest.raises(RlxError, match="multiple of grad_steps_per_update"):
        bc.Config(total_steps=1000, grad_steps_per_update=300).validate()
    with pytest.raises(RlxError, match="learning_rate"):
        bc.Config(learning_rate=0.0).validate()
    record = algorithm.get("bc")
    assert record is bc.ALGORITHM and record.unit is algorithm.Unit.GRADIENT_STEPS
    assert set(record.assets) == {"dataset"}
    assert set(record.metric_rules(make("pendulum_swingup"))) == {"loss/bc", "loss/grad_norm"}


def test_state_holds_no_copy_of_the_dataset_and_learning_rate_is_a_traced_leaf():
    env = Countdown()
    rows = 64
    data = {k: jnp.asarray(v) for k, v in _tiny_dataset(rows=rows, obs=1).items()}
    config = bc.Config(total_steps=8, grad_steps_per_update=4, batch_size=8, hidden=(8,))
    configs = cfg.stack([config.replace(learning_rate=lr) for lr in (0.0, 1e-2)])
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    state = jax.jit(jax.vmap(lambda k, c: bc.init(k, env, c, {"dataset": data})))(keys, configs)
    assert all(rows not in leaf.shape for leaf in jax.tree.leaves(state))
    step = jax.jit(jax.vmap(lambda s: bc.update(env, s, {"dataset": data})))
    new, metrics = step(state)
    assert metrics["loss/bc"].shape == (2,) and np.isfinite(metrics["loss/bc"]).all()
    moved = [np.abs(a - b).max(axis=tuple(range(1, a.ndim))) for a, b in
             zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params), strict=True)]  # fmt: skip
    moved = np.max(moved, axis=0)
    assert moved[0] == 0.0 and moved[1] > 0.0  # lr = 0 keeps the parameters, lr > 0 moves them


@pytest.mark.slow
def test_bc_learns_pendulum_swingup_from_baseline_demonstrations():
    env = make("pendulum_swingup")
    data = collect_baseline_dataset("pendulum_swingup", episodes=32, episode_length=200, noise=0.2)
    dataset = {"dataset": {k: jnp.asarray(v) for k, v in data.items()}}
    config = cfg.as_leaves(
        bc.Config(total_steps=1500, grad_steps_per_update=500, hidden=(64, 64), learning_rate=1e-3)
    )
    config.validate()
    state = jax.jit(lambda k, a: bc.init(k, env, config, a))(jax.random.PRNGKey(0), dataset)
    policy = bc.ALGORITHM.policy
    score = jax.jit(
        lambda s: evaluate(env, policy(s, env), jax.random.PRNGKey(1), 32, 200)["eval/return"]
    )
    untrained = float(score(state))
    step = jax.jit(lambda s, a: bc.update(env, s, a))
    losses = []
    for _ in range(config.num_updates):
        state, metrics = step(state, dataset)
        losses.append(float(metrics["loss/bc"]))
    trained = float(score(state))
    print(f"untrained {untrained:.1f}, BC {trained:.1f}, losses {losses}")
    assert untrained < THRESHOLD - 500, untrained
    assert trained > THRESHOLD, trained
    assert losses[-1] < losses[0]
