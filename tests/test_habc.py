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
from rlx.envs.squeeze_lift import SqueezeLift

from rlx import api, cli, envs
from rlx.errors import RlxError

B = jnp.asarray

# Own steps 0-1, the expert at 2-3, own again 4-6 (success at 6), step 7 not valid.
INTERVENED = B([0, 0, 1, 1, 0, 0, 0, 0], bool)
VALID = B([1, 1, 1, 1, 1, 1, 1, 0], bool)


def _credit(aware=True, success_step=6, reason=None, **kw):
    config = _config(labels="aware" if aware else "naive", **kw)
    return habc.episode_credit(INTERVENED, VALID, jnp.int32(success_step), jnp.float32(0.5),
                               config, reason)  # fmt: skip


def _config(**kw):
    return habc.ALGORITHM.make_config(**kw)


def test_aware_credit_ends_chains_at_segment_boundaries():
    c = _credit()
    np.testing.assert_array_equal(c.end, [0, 1, 0, 1, 0, 0, 1, 0])
    # The rescued segment ends with label 0, the final own segment with the outcome.
    np.testing.assert_array_equal(c.reward_v, [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(c.reward_e, [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(c.own, [1, 1, 0, 0, 1, 1, 1, 0])
    np.testing.assert_allclose(c.efficiency.target, [0, 0, 0, 0, 0.25, 0.5, 1, 0])


def test_random_take_over_leaves_the_segment_before_it_unlabelled_and_bootstrapped():
    reason = INTERVENED.astype(jnp.int32) * habc.REASONS.index("random")
    c = _credit(reason=reason)
    # Steps 0-1 carry no label and no chain end: their advantage bootstraps from step 2's state.
    np.testing.assert_array_equal(c.viability.labelled, [0, 0, 0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(c.end, [0, 0, 0, 1, 0, 0, 1, 0])
    danger = INTERVENED.astype(jnp.int32) * habc.REASONS.index("danger")
    np.testing.assert_array_equal(_credit(reason=danger).end, [0, 1, 0, 1, 0, 0, 1, 0])


def test_credit_stops_at_the_success_step():
    c = _credit(success_step=5)
    np.testing.assert_array_equal(c.reward_e, [0, 0, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(c.own, [1, 1, 0, 0, 1, 1, 0, 0])
    np.testing.assert_allclose(c.efficiency.target, [0, 0, 0, 0, 0.5, 1, 0, 0])


def test_single_critic_targets_are_discounted_returns_of_every_step():
    c = _credit(advantage="discounted_mc")
    np.testing.assert_allclose(c.efficiency.target, 0.5 ** np.array([6, 5, 4, 3, 2, 1, 0, 0])
                               * np.array([1, 1, 1, 1, 1, 1, 1, 0]))  # fmt: skip
    np.testing.assert_array_equal(c.efficiency.labelled, VALID)


def test_naive_credit_is_one_chain_to_the_episode_end():
    c = _credit(aware=False)
    np.testing.assert_array_equal(c.end, [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(c.reward_v, [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(c.viability.labelled, VALID)


def test_failed_episode_gives_no_success_reward():
    c = _credit(success_step=-1)
    assert float(c.reward_v.sum()) == 0.0 and float(c.reward_e.sum()) == 0.0
    assert not bool(c.efficiency.labelled.any())


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


def test_monte_carlo_weights_by_hand():
    c = _credit()
    v = jnp.full((8,), 0.5)
    values = habc.Heads(v, jnp.zeros(8))
    config = _config(advantage="monte_carlo", gate="none", beta=1.0, w_max=20.0, w_int=0.3,
                     normalize_weights=False)  # fmt: skip
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
    config = _config(gate="none", beta=2.0, w_max=1.5, normalize_weights=False)
    w = habc.step_weights(config, c, VALID, habc.Heads(v, v), habc.Heads(nv, nv))
    # Own steps: 0.2-0.1, end of a rescued segment 0-0.2, 0.6-0.4, 0.8-0.6, end 1-0.8.
    a = np.array([0.1, -0.2, 0.2, 0.2, 0.2])
    z = (a - a.mean()) / a.std()
    own = np.array([0, 1, 4, 5, 6])
    expected = np.minimum(np.exp(z / 2), 1.5)
    np.testing.assert_allclose(np.asarray(w.weight)[own], expected, rtol=1e-5)
    # Normalised (the default): the same weights over their mean on the policy's own steps.
    w = habc.step_weights(_config(gate="none", beta=2.0, w_max=1.5), c, VALID,
                          habc.Heads(v, v), habc.Heads(nv, nv))  # fmt: skip
    np.testing.assert_allclose(np.asarray(w.weight)[own], expected / expected.mean(), rtol=1e-5)


def test_relative_gate_opens_on_the_batchs_more_viable_half():
    v = B([0.01, 0.02, 0.03, 0.04])
    g = habc.gate_value(_config(gate="relative", kappa=1000.0), v, B([1, 1, 1, 1], bool))
    np.testing.assert_array_equal(np.asarray(g) > 0.5, [False, False, True, True])
    assert float(habc.gate_value(_config(), v).max()) < 0.01  # the absolute gate stays shut


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
        ({"gate": "softmax"}, "gate must be one of sigmoid, relative, power, fixed, none"),
        ({"release": "soon"}, "release must be one of steps, safe, recovered"),
        ({"failure_reasons": ("tired",)}, "failure_reasons must name reasons among danger"),
        ({"anchor": -1.0}, "anchor must be a number >= 0"),
        ({"labels": "smart"}, "labels must be one of aware, naive"),
        ({"total_steps": 100}, "multiple of num_envs=32"),
    ],
)
def test_bad_config_values_are_named(overrides, message):
    with pytest.raises(RlxError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _config(**overrides).validate()


def test_env_without_an_expert_is_refused_when_interventions_are_on():
    env = envs.make("pointmaze_medium_singletask")
    with pytest.raises(RlxError, match=r"ends on its success step"):
        habc.check_env(env, _config())
    with pytest.raises(RlxError, match="ends on its success step"):
        habc.check_env(envs.make("pendulum_swingup"), _config())

    class NoDanger(SqueezeLift):
        danger = None
        recovered = None

    with pytest.raises(RlxError, match="danger predicate"):
        habc.check_env(NoDanger(1), _config())
    with pytest.raises(RlxError, match="recovered predicate"):
        habc.check_env(NoDanger(1), _config(danger_trigger=False))
    habc.check_env(NoDanger(1), _config(danger_trigger=False, release="steps"))


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
    other_env = ["train", "--algo", "habc", "--env", "squeeze_lift_mjx_l1", "--seeds", "1",
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
