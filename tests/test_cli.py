"""Bad input: one error line naming the value and what is allowed, exit code 2, nothing written."""

from __future__ import annotations

import pytest

from rlx import cli


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--algo", "ppoo"], "unknown algorithm 'ppoo'. Did you mean 'ppo' or 'sft_ppo'?"),
        (["--env", "cartpole_swingupp"], "Did you mean 'cartpole_swingup'"),
        (
            ["--set", "learning_rat=1e-3"],
            "unknown ppo setting 'learning_rat'. Did you mean 'learning_rate'?",
        ),
        (["--set", "gamma=high"], "bad value 'high' for 'gamma': expected float"),
        (["--set", "num_envs=2.5"], "bad value '2.5' for 'num_envs': expected int"),
        (["--set", "gamma"], "expected name=value"),
        (["--set", "gamma=1.5"], "gamma must be in [0, 1], got 1.5"),
        (["--total-steps", "0"], "--total-steps: expected a positive integer, got 0"),
        (["--total-steps", "-3"], "expected a positive integer, got -3"),
        (["--seeds", "zero"], "--seeds: expected a number of seeds N, a range A-B or a list"),
        (["--seeds", "0"], "seeds must be a positive integer, got 0"),
        (["--seeds", "-1"], "seeds must be a positive integer, got -1"),
        (["--seeds", "5-3"], "--seeds: the range 5-3 is empty (5 > 3)"),
        (["--seeds", "1,1"], "seed 1 is given twice; seeds must be distinct"),
        (["--seeds", "4,-1"], "seed -1 is negative; seeds are integers >= 0"),
        (
            ["--total-steps", "3500"],
            "total_steps=3500 must be a multiple of num_envs*unroll_length=3000",
        ),
        (
            ["--set", "num_minibatches=7"],
            "num_minibatches=7 must divide num_envs*unroll_length=3000",
        ),
        (["--num-evals", "7"], "num_evals=7 must divide the number of updates"),
        (["--grid", "num_envs=8,16"], "cannot grid over static field 'num_envs'"),
        (["--grid", "gamma="], "expected name=v1,v2"),
        (["--backend", "mjx"], "--backend applies to brax:* environments only"),
        (["--set", "gamma=0.9", "--set", "gamma=0.8"], "--set gamma is given twice"),
        (["--total-steps", "3000", "--set", "total_steps=6000"], "total_steps is given twice"),
        (["--algo", "bc"], "missing asset(s) dataset"),
        (["--algo", "bc", "--asset", "dataset=/nonexistent/demos.npz"], "does not exist"),
        (["--asset", "dataset=demos.npz"], "ppo reads no assets, but 'dataset' was given"),
        (["--algo", "bc", "--asset", "data=x.npz"], "unknown asset 'data'. Did you mean"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_bad_train_input(tmp_path, capsys, argv, expected, dry_run):
    out = tmp_path / "run"
    base = {"--algo": "ppo", "--env": "pendulum_swingup"}
    for flag in ("--algo", "--env"):
        if flag in argv:
            base.pop(flag)
    args = ["train", *[x for kv in base.items() for x in kv], *argv, "--out", str(out)]
    args += ["--dry-run"] * dry_run  # the same checks, the same errors
    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("rlx: error: ") and err.count("\n") == 1, err
    assert expected in err
    assert "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_out_dir_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code = cli.main(["train", "--algo", "ppo", "--env", "pendulum_swingup", "--out", str(out)])
    assert code == 2
    assert "exists and is not empty; pass --overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "x"


def test_list_names_everything(capsys):
    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    for name in ("pendulum_swingup", "cartpole_swingup", "brax:ant", "brax:humanoid", "ppo"):
        assert name in text


def test_env_set_reads_booleans_numbers_and_text():
    pairs = ["placement_danger=true", "b=False", "level=2", "x=0.5", "backend=mjx"]
    kwargs = cli._env_kwargs(pairs, None)
    assert kwargs == {"placement_danger": True, "b": False, "level": 2, "x": 0.5, "backend": "mjx"}
    assert type(kwargs["level"]) is int and type(kwargs["placement_danger"]) is bool
