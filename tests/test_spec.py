"""The one override path: the same value reaches the config the same way from --set, a sweep
file and the Python API; a sweep cell's layers have one documented precedence; nothing accepted
is dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlx import algorithm, cli, spec, sweep
from rlx.errors import RlxError

PPO = algorithm.get("ppo")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3e-4", 3e-4), (3e-4, 3e-4), (1, 1.0)],
)
def test_a_float_field_from_every_source(value, expected):
    out = spec.resolve(PPO, {"learning_rate": value}).overrides["learning_rate"]
    assert out == expected and isinstance(out, float)


def test_types_of_every_kind_of_field():
    got = spec.resolve(
        PPO,
        {"num_envs": "16", "anneal_lr": "false", "policy_hidden": "32,32", "activation": "relu"},
    ).overrides
    assert got == {
        "num_envs": 16,
        "anneal_lr": False,
        "policy_hidden": (32, 32),
        "activation": "relu",
    }
    assert spec.resolve(PPO, {"policy_hidden": [8]}).overrides["policy_hidden"] == (8,)


@pytest.mark.parametrize(
    ("overrides", "grid", "message"),
    [
        ({"num_envs": 2.5}, None, "bad value 2.5 for 'num_envs': expected int"),
        ({"num_envs": True}, None, "bad value True for 'num_envs': expected int"),
        ({"gamma": "high"}, None, "bad value 'high' for 'gamma': expected float"),
        ({"policy_hidden": [1.5]}, None, "expected comma-separated ints"),
        ({"gama": 0.9}, None, "unknown ppo setting 'gama'. Did you mean 'gamma'?"),
        (None, {"num_envs": [8, 16]}, "cannot grid over static field 'num_envs'"),
        (None, {"gamma": []}, "grid for 'gamma' must be a non-empty list"),
        (None, {"gamma": "0.9"}, "grid for 'gamma' must be a non-empty list"),
    ],
)
def test_bad_overrides_are_refused(overrides, grid, message):
    with pytest.raises(RlxError, match=None) as info:
        spec.resolve(PPO, overrides, grid)
    assert message in str(info.value)


def test_duplicate_assignments_are_refused_not_dropped():
    with pytest.raises(RlxError, match="given twice"):
        spec.parse_pairs(["gamma=0.9", "gamma=0.8"], "--set")


BASE = """
name = "layers"
algorithms = ["ppo"]
environments = ["pendulum_swingup", "cartpole_swingup"]
seeds = 1
total_steps = 7680
num_evals = 2

[settings.ppo]
num_envs = 8
unroll_length = 8
num_minibatches = 2
learning_rate = 1e-3
gamma = 0.9
gae_lambda = 0.9

[cell."ppo/cartpole_swingup"]
gamma = 0.95
gae_lambda = 0.93

[quick]
gae_lambda = 0.8
"""


def _load(tmp_path: Path, text: str, quick: bool):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return {c.env: c.plan.base_config for c in sweep.load(path, quick=quick).cells}


def test_cell_layers_follow_the_documented_precedence(tmp_path):
    full = _load(tmp_path, BASE, quick=False)
    # defaults < total_steps < [settings] < [cell] < [quick]
    assert full["pendulum_swingup"].clip_eps == PPO.make_config().clip_eps  # default
    assert full["pendulum_swingup"].total_steps == 7680
    assert (full["pendulum_swingup"].gamma, full["cartpole_swingup"].gamma) == (0.9, 0.95)
    assert full["cartpole_swingup"].gae_lambda == 0.93
    quick = _load(tmp_path, BASE, quick=True)
    assert quick["pendulum_swingup"].gae_lambda == quick["cartpole_swingup"].gae_lambda == 0.8
    assert quick["cartpole_swingup"].gamma == 0.95  # [quick] does not set it: [cell] stays


def test_quick_total_steps_is_applied_from_either_key_but_not_both(tmp_path):
    in_table = _load(tmp_path, BASE + "total_steps = 1280\n", quick=True)
    assert in_table["pendulum_swingup"].total_steps == 1280  # [quick] total_steps is not dropped
    top = BASE.replace("num_evals = 2", "num_evals = 2\nquick_total_steps = 2560")
    assert _load(tmp_path, top, quick=True)["cartpole_swingup"].total_steps == 2560
    with pytest.raises(RlxError, match="quick budget is given twice"):
        _load(tmp_path, top + "total_steps = 1280\n", quick=False)


def test_cli_and_sweep_give_the_same_plan(tmp_path):
    """--set text and TOML values reach one plan hash."""
    from rlx import runner

    settings = {"num_envs": "8", "unroll_length": "8", "num_minibatches": "2",
                "learning_rate": "1e-3", "gamma": "0.9", "gae_lambda": "0.9"}  # fmt: skip
    args = cli.build_parser().parse_args(
        ["train", "--algo", "ppo", "--env", "pendulum_swingup", "--seeds", "1", "--out", "x",
         "--total-steps", "7680", "--num-evals", "2", *[f"--set={k}={v}" for k, v in settings.items()]]
    )  # fmt: skip
    from_cli = runner.plan("ppo", "pendulum_swingup", seeds=1, num_evals=2,
                           overrides=cli._overrides(args, spec))  # fmt: skip
    from_toml = sweep.load(_write(tmp_path, BASE)).cells[0].plan
    assert runner.plan_hash(from_cli) == runner.plan_hash(from_toml)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path
