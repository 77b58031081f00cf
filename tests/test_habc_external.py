"""HABC on external episodes and policies: the episode schema, its errors, the policy adapter,
`finetune` and ``rlx finetune`` (`rlx.algos.finetune.episodes`, `rlx.algos.finetune.external`)."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.algos.finetune import episodes as episode_io
from rlx.algos.finetune import external, habc

from rlx import cli
from rlx.errors import RlxError

E, T, OBS, A = 3, 6, 5, 4  # episodes, steps, observation and action widths


def _arrays(**changes) -> dict[str, np.ndarray]:
    """A valid episode set (E=3, T=6): lengths 6, 4, 2; episode 0 succeeds, the expert takes
    over for danger at steps 2-3 of episode 0 and for a random reason at step 0 of episode 1;
    `changes` replace (None: drop) fields."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(E, T, OBS)).astype(np.float32)
    reason = np.zeros((E, T), np.int32)
    reason[0, 2:4], reason[1, 0] = 1, 3
    arrays = {"obs": obs, "next_obs": obs + 1.0, "action": rng.uniform(-1, 1, (E, T, A)),
              "reason": reason, "length": np.array([6, 4, 2]),
              "success": np.array([1, 0, 0])}  # fmt: skip
    arrays.update(changes)
    return {k: np.asarray(v) for k, v in arrays.items() if v is not None}


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def test_schema_round_trip_gives_habc_episodes(tmp_path):
    arrays = _arrays(obs=_arrays()["obs"].copy())
    arrays["obs"][2, 5] = np.nan  # padding (episode 2 has 2 steps): ignored and zeroed
    path = episode_io.save_episodes(tmp_path / "ep.npz", **arrays)
    assert {k: v.tolist() for k, v in episode_io.read_arrays(path).items()}.keys() == arrays.keys()
    ep = episode_io.load_episodes(path)
    assert isinstance(ep, habc.Episodes)
    np.testing.assert_array_equal(ep.valid.sum(1), [6, 4, 2])
    np.testing.assert_array_equal(ep.success_step, [5, -1, -1])  # default: length - 1
    np.testing.assert_array_equal(ep.success, [True, False, False])
    np.testing.assert_array_equal(ep.ret, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(ep.reason, arrays["reason"])
    np.testing.assert_array_equal(ep.intervened, arrays["reason"] > 0)
    started = np.zeros((E, T), bool)
    started[0, 2], started[1, 0] = True, True
    np.testing.assert_array_equal(ep.started, started)
    assert float(ep.obs[2, 5].sum()) == 0.0
    np.testing.assert_allclose(ep.obs[0], arrays["obs"][0])
    np.testing.assert_allclose(ep.action[0], arrays["action"][0], rtol=1e-6)
    given = episode_io.load_episodes(episode_io.save_episodes(
        tmp_path / "b.npz", **_arrays(success_step=np.array([3, -1, -1]), ret=np.ones(3))))  # fmt: skip
    np.testing.assert_array_equal(given.success_step, [3, -1, -1])
    np.testing.assert_array_equal(given.ret, [1.0, 1.0, 1.0])


BAD = {
    "missing field": (_arrays(action=None), r"field 'action' is missing \(required\)"),
    "no outcome": (_arrays(success=None), r"'success' is missing \(the outcome of each episode"),
    "misspelt outcome": (
        _arrays(success=None, sucess=np.ones(3)),
        r"unknown episode field 'sucess'\. Did you mean 'success'",
    ),
    "obs rank": (
        _arrays(obs=np.zeros((E, OBS))),
        r"'obs' has shape \(3, 5\); it must be \[E, T, O\]",
    ),
    "next_obs shape": (
        _arrays(next_obs=np.zeros((E, T, OBS + 1))),
        r"'next_obs' has shape \(3, 6, 6\); .* must be \[3, 6, 5\]",
    ),
    "action rank": (
        _arrays(action=np.zeros((E, T))),
        r"'action' has shape \(3, 6\); .*\[3, 6, A\]",
    ),
    "reason shape": (_arrays(reason=np.zeros((E, T + 1), int)), r"'reason' has shape \(3, 7\)"),
    "length shape": (_arrays(length=np.array([6, 4])), r"'length' has shape \(2,\); .*\[3\]"),
    "length zero": (_arrays(length=np.array([6, 0, 2])), r"'length' is 0 at episode 1; .* 1\.\.6"),
    "length over T": (
        _arrays(length=np.array([7, 4, 2])),
        r"'length' is 7 at episode 0; .* 1\.\.6",
    ),
    "reason code": (
        _arrays(reason=np.full((E, T), 7)),
        r"'reason' is 7 at episode 0, step 0; allowed codes are 0\.\.4 \(0 policy, "
        r"1 danger, 2 low_viability, 3 random, 4 other\)",
    ),
    "negative reason": (
        _arrays(reason=np.where(np.eye(E, T, 1) > 0, -1, 0)),
        r"'reason' is -1 at episode 0, step 1; allowed codes are 0\.\.4",
    ),
    "float reason": (_arrays(reason=np.zeros((E, T))), r"'reason' has dtype float64; .* integer"),
    "outcome not 0/1": (
        _arrays(success=np.array([1, 2, 0])),
        r"'success' is 2 at episode 1; it must be 0 or 1",
    ),
    "success_step >= length": (
        _arrays(success_step=np.array([6, -1, -1])),
        r"'success_step' is 6 at episode 0, a success of length 6; "
        r"it must be in 0\.\.5",
    ),
    "success_step of a failure": (
        _arrays(success_step=np.array([5, 2, -1])),
        r"'success_step' is 2 at episode 1, a failure .* must be -1",
    ),
    "non-finite obs": (
        _arrays(obs=np.where(np.eye(E, T, 1)[..., None] > 0, np.inf, np.zeros((E, T, OBS)))),
        r"'obs' is not finite at episode 0, step 1",
    ),
    "non-finite action": (
        _arrays(action=np.full((E, T, A), np.nan)),
        r"'action' is not finite at episode 0, step 0",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_episode_file_is_one_error_naming_the_field(tmp_path, case):
    arrays, message = BAD[case]
    path = _write(tmp_path / "bad.npz", arrays)
    with pytest.raises(RlxError, match=message) as err:
        episode_io.load_episodes(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RlxError, match=message):
        episode_io.validate(arrays)


def test_save_refuses_bad_arrays_and_writes_nothing(tmp_path):
    with pytest.raises(RlxError, match=r"'reason' is 5 at episode 0, step 0"):
        episode_io.save_episodes(tmp_path / "out.npz", **_arrays(reason=np.full((E, T), 5)))
    assert list(tmp_path.iterdir()) == []


def test_unreadable_episode_file(tmp_path):
    (tmp_path / "x.npz").write_text("not an archive")
    with pytest.raises(RlxError, match=r"not a readable \.npz archive"):
        episode_io.load_episodes(tmp_path / "x.npz")
    with pytest.raises(RlxError, match="does not exist"):
        episode_io.load_episodes(tmp_path / "missing.npz")


def _linear(action_size: int = A) -> external.PolicyAdapter:
    params = {"w": jnp.zeros((OBS, action_size)), "b": jnp.zeros((action_size,))}
    return external.make_adapter(lambda p, obs: jnp.tanh(obs @ p["w"] + p["b"]), params,
                                 action_size, OBS)  # fmt: skip


def test_adapter_action_size_must_match_the_episodes_and_its_act(tmp_path):
    ep = episode_io.from_arrays(_arrays())
    with pytest.raises(RlxError, match=r"policy adapter acts in R\^3, the episodes' actions are "
                                       r"in R\^4\."):  # fmt: skip
        external.finetune(_linear(3), ep)
    wide = external.PolicyAdapter(_linear(A).act, _linear(A).params, A, OBS + 1)
    with pytest.raises(RlxError, match=r"observes R\^6, the episodes' observations are in R\^5"):
        external.finetune(wide, ep)
    liar = _linear(A)._replace(action_size=3)
    with pytest.raises(RlxError, match=r"says it acts in R\^3, but act\(params, obs\) returns "
                                       r"shape \(4,\)"):  # fmt: skip
        external.check_act(liar, OBS)


@pytest.mark.slow
def test_finetune_changes_params_and_keeps_their_structure():
    ep = episode_io.from_arrays(_arrays())
    adapter = _linear()
    config = habc.Config(critic_steps=3, policy_steps=3, batch_size=8)
    tuned = external.finetune(adapter, ep, config, updates=2, key=jax.random.PRNGKey(1))
    assert jax.tree.structure(tuned) == jax.tree.structure(adapter.params)
    assert jax.tree.map(jnp.shape, tuned) == jax.tree.map(jnp.shape, adapter.params)
    pairs = zip(jax.tree.leaves(tuned), jax.tree.leaves(adapter.params), strict=True)
    moved = [float(jnp.abs(a - b).max()) for a, b in pairs]
    assert min(moved) > 0.0


@pytest.mark.parametrize("bad", ["episodes", "set"])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, bad):
    good = _write(tmp_path / "good.npz", _arrays())
    broken = _write(tmp_path / "bad.npz", _arrays(reason=np.full((E, T), 9)))
    out = tmp_path / "tuned"
    args = ["finetune", "--episodes", str(broken if bad == "episodes" else good),
            "--policy", str(tmp_path / "no-policy"), "--out", str(out)]  # fmt: skip
    if bad == "set":
        args += ["--set", "critc_steps=3"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlx: error: ") and err.count("\n") == 1
    assert ("'reason' is 9" if bad == "episodes" else "critc_steps") in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz",
                                                                            "good.npz"]  # fmt: skip


def _tiny_artifact(directory: Path) -> Path:
    """A bc artifact of squeeze_lift_l1 (observations in R^9, actions in R^4), hidden (8,)."""
    from rlx.algos import bc

    from rlx import policy
    from rlx.learn import normalizer

    config = bc.Config(hidden=(8,))
    net = bc.TanhPolicy(config.hidden, 4, config.activation)
    params = {"policy": net.init(jax.random.PRNGKey(0), jnp.zeros((9,))),
              "obs_stats": normalizer.as_dict(normalizer.init(9))}  # fmt: skip
    return policy.export_policy(directory, "bc", "squeeze_lift_l1", {}, config, params, {})


@pytest.mark.slow
def test_cli_finetunes_an_artifact_and_refuses_a_mismatched_one(tmp_path, capsys):
    source = _tiny_artifact(tmp_path / "sft")
    obs = np.random.default_rng(1).normal(size=(E, T, 9))
    narrow = _write(tmp_path / "a3.npz", _arrays(obs=obs, next_obs=obs, action=np.zeros((E, T, 3))))
    out = tmp_path / "tuned"
    base = ["finetune", "--policy", str(source), "--out", str(out)]
    assert cli.main([*base, "--episodes", str(narrow)]) == 2
    err = capsys.readouterr().err
    assert err == "rlx: error: policy adapter acts in R^4, the episodes' actions are in R^3.\n"
    assert not out.exists()
    good = _write(tmp_path / "a4.npz", _arrays(obs=obs, next_obs=obs))
    small = ["--set", "critic_steps=2", "--set", "policy_steps=2", "--set", "batch_size=8"]
    assert cli.main([*base, "--episodes", str(good), "--updates", "2", *small]) == 0
    summary = json.loads((out / external.SUMMARY_FILE).read_text())
    assert summary["updates"] == 2 and summary["steps_by_reason"]["danger"] == 2
    assert summary["config"]["policy_steps"] == 2
    tuned = external.adapter_from_artifact(out)
    before = external.adapter_from_artifact(source)
    assert jax.tree.structure(tuned.params) == jax.tree.structure(before.params)
    assert not np.allclose(tuned.params["params"]["MLP_0"]["Dense_0"]["kernel"],
                           before.params["params"]["MLP_0"]["Dense_0"]["kernel"])  # fmt: skip
