"""HABC (algos/habc.py): per-episode credit, gate, weights and the weighted BC loss against
hand-computed arrays; the pretrained-policy asset and bad inputs (one error line, exit 2,
nothing written); a learning test on squeeze_lift_l1 (HABC raises the SFT policy's success,
SFT-only leaves the policy as it was)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.algos.finetune import common, habc

from rlx import api, cli, envs
from rlx.errors import RlxError

B = jnp.asarray

# Own steps 0-1, the expert at 2-3, own again 4-6 (success at 6), step 7 not valid.
INTERVENED = B([0, 0, 1, 1, 0, 0, 0, 0], bool)
VALID = B([1, 1, 1, 1, 1, 1, 1, 0], bool)


def test_aware_credit_ends_chains_at_segment_boundaries():
    c = habc.episode_credit(INTERVENED, VALID, B(True), jnp.float32(0.5), aware=True)
    np.testing.assert_array_equal(c.end, [0, 1, 0, 1, 0, 0, 1, 0])
    # The rescued segment ends with label 0, the final own segment with the outcome.
    np.testing.assert_array_equal(c.reward_v, [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(c.reward_e, [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(c.own, [1, 1, 0, 0, 1, 1, 1, 0])
    np.testing.assert_allclose(c.efficiency.target, [0, 0, 0, 0, 0.25, 0.5, 1, 0])


def test_naive_credit_is_one_chain_to_the_episode_end():
    c = habc.episode_credit(INTERVENED, VALID, B(True), jnp.float32(0.5), aware=False)
    np.testing.assert_array_equal(c.end, [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(c.reward_v, [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(c.viability.labelled, VALID)


def test_failed_episode_gives_no_success_reward():
    c = habc.episode_credit(INTERVENED, VALID, B(False), jnp.float32(0.5), aware=True)
    assert float(c.reward_v.sum()) == 0.0 and float(c.reward_e.sum()) == 0.0
    assert not bool(c.efficiency.labelled.any())


def _config(**kw):
    return habc.ALGORITHM.make_config(**kw)


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ("sigmoid", 1 / (1 + np.exp(-10 * (np.array([0.2, 0.8, 1.0]) - 0.8)))),
        ("power", np.array([0.04, 0.64, 1.0])),
        ("fixed", np.array([0.5, 0.5, 0.5])),
        ("none", np.zeros(3)),
    ],
)
def test_gate_forms(gate, expected):
    v = B([0.2, 0.8, 1.0])
    np.testing.assert_allclose(habc.gate_value(_config(gate=gate), v), expected, rtol=1e-6)


def _credit(aware=True):
    return habc.episode_credit(INTERVENED, VALID, B(True), jnp.float32(0.5), aware)


def test_monte_carlo_weights_by_hand():
    c = _credit()
    v = jnp.full((8,), 0.5)
    values = habc.Heads(v, jnp.zeros(8))
    config = _config(advantage="monte_carlo", gate="none", beta=1.0, w_max=20.0, w_int=0.3)
    w = habc.step_weights(config, c, VALID, values, values)
    # A_v = label - 0.5 on own steps: -0.5, -0.5, 0.5, 0.5, 0.5 -> mean 0.1, std sqrt(0.24).
    a = np.array([-0.5, -0.5, 0.5, 0.5, 0.5])
    z = (a - a.mean()) / a.std()
    own = np.array([0, 1, 4, 5, 6])
    np.testing.assert_allclose(np.asarray(w.weight)[own], np.exp(z), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(w.weight)[[2, 3]], 0.3)  # the expert's: w_int
    assert float(w.weight[7]) == 0.0  # not valid


def test_one_step_weights_by_hand():
    c = _credit()
    v = B([0.1, 0.2, 0.0, 0.0, 0.4, 0.6, 0.8, 0.0])
    nv = B([0.2, 0.3, 0.0, 0.0, 0.6, 0.8, 0.9, 0.0])
    config = _config(gate="none", beta=2.0, w_max=1.5)
    w = habc.step_weights(config, c, VALID, habc.Heads(v, v), habc.Heads(nv, nv))
    # Own steps: 0.2-0.1, end of a rescued segment 0-0.2, 0.6-0.4, 0.8-0.6, end 1-0.8.
    a = np.array([0.1, -0.2, 0.2, 0.2, 0.2])
    z = (a - a.mean()) / a.std()
    own = np.array([0, 1, 4, 5, 6])
    np.testing.assert_allclose(np.asarray(w.weight)[own], np.minimum(np.exp(z / 2), 1.5), rtol=1e-5)


def test_uniform_weighting_is_plain_bc_on_valid_steps():
    c = _credit()
    values = habc.Heads(jnp.zeros(8), jnp.zeros(8))
    w = habc.step_weights(_config(weighting="uniform"), c, VALID, values, values)
    np.testing.assert_array_equal(w.weight, VALID.astype(jnp.float32))


def test_weighted_bc_loss_by_hand():
    pred = B([[0.0, 1.0], [1.0, 1.0]])
    target = B([[1.0, 1.0], [1.0, -1.0]])
    # Row errors 1 and 4, weights 2 and 0.5: (2*1 + 0.5*4) / (2*2) = 1.
    assert float(habc.weighted_bc_loss(pred, target, B([2.0, 0.5]))) == pytest.approx(1.0)


def test_draw_only_from_the_pool():
    mask = B([0, 1, 0, 0, 1, 0], bool)
    idx = common.draw(jax.random.PRNGKey(0), common.pool(mask), 500)
    assert set(np.asarray(idx).tolist()) == {1, 4}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gate_threshold": 1.5}, "gate_threshold must be in [0, 1]"),
        ({"w_max": 0.5}, "w_max must be >= 1"),
        ({"beta": 0.0}, "beta must be > 0"),
        ({"gate": "softmax"}, "gate must be one of sigmoid, power, fixed, none"),
        ({"labels": "smart"}, "labels must be one of aware, naive"),
        ({"total_steps": 100}, "multiple of num_envs=32"),
    ],
)
def test_bad_config_values_are_named(overrides, message):
    with pytest.raises(RlxError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _config(**overrides).validate()


def test_env_without_an_expert_is_refused_when_interventions_are_on():
    env = envs.make("pointmaze_medium_singletask")
    with pytest.raises(RlxError, match=r"baseline controller|goal_reached"):
        habc.check_env(env, _config())
    with pytest.raises(RlxError, match="danger predicate"):
        habc.check_env(envs.make("pendulum_swingup"), _config())


# --- the pretrained asset, the CLI's bad inputs, learning -------------------------------------


TRAIN = ["train", "--algo", "habc", "--env", "squeeze_lift_l1", "--seeds", "1", "--set",
         "total_steps=32", "--num-evals", "1"]  # fmt: skip


def _refused(capsys, argv, out: Path, message: str) -> None:
    assert cli.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_missing_pretrained_policy(capsys, tmp_path):
    _refused(capsys, TRAIN, tmp_path / "o", "missing asset(s) pretrained")


@pytest.mark.slow
def test_missing_or_corrupt_artifact(capsys, tmp_path):
    _refused(capsys, [*TRAIN, "--asset", f"pretrained={tmp_path / 'nope'}"], tmp_path / "o",
             "does not exist")  # fmt: skip
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "policy.json").write_text("{not json")
    _refused(capsys, [*TRAIN, "--asset", f"pretrained={broken}"], tmp_path / "o2",
             "is not valid JSON")  # fmt: skip


def test_pretrained_policy_of_other_sizes(capsys, tmp_path, sft):
    other_env = ["train", "--algo", "habc", "--env", "pendulum_swingup", "--seeds", "1",
                 "--set", "danger_trigger=false", "--set", "total_steps=32", "--num-evals", "1",
                 "--asset", f"pretrained={sft}"]  # fmt: skip
    _refused(capsys, other_env, tmp_path / "o", "observations of size 9, acts with size 4")
    argv = [*TRAIN, "--set", "hidden=[64,64]", "--asset", f"pretrained={sft}"]
    _refused(capsys, argv, tmp_path / "o2", "hidden widths [256, 256]")
    _refused(capsys, [*TRAIN, "--set", "activation=tanh", "--asset", f"pretrained={sft}"],
             tmp_path / "o3", "uses activation 'relu'")  # fmt: skip


def _final_success(algo: str, sft: Path, episodes: int) -> tuple[np.ndarray, api.Result]:
    res = api.train(
        algo, "squeeze_lift_l1", seeds=2, num_evals=1, eval_episodes=256,
        overrides={"total_steps": episodes, "critic_hidden": (64, 64)},
        assets={"pretrained": sft}, progress=False,
    )  # fmt: skip
    curves = [r["curve"]["eval/goal_reached"] for r in res.record["runs"]]
    return np.array(curves), res


@pytest.mark.slow
def test_habc_raises_success_over_sft_and_sft_only_stays(sft):
    curves, _ = _final_success("habc", sft, 1024)
    start, end = curves[:, 0].mean(), curves[:, -1].mean()
    assert end >= start + 0.3, curves
    _, res = _final_success("habc_sft", sft, 64)
    pre = common.PRETRAINED.load(sft)["policy"]
    for run in range(2):
        jax.tree.map(np.testing.assert_array_equal, res.run_state(run).policy, pre)
