"""The environment contract (rlx.envs.contract): every own env passes it, each kind of breakage
is reported as the right problem, and `rlx check-env` prints the report and exits 0 or 2."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from brax.envs.base import Env, State
from rlx.envs import contract
from rlx.envs.goals import GoalLayout

import rlx
from rlx import cli, envs, runner
from rlx.errors import RlxError


class Tiny(Env):
    """A well-formed 3-D point env (action 2-D): the base the broken envs below each spoil once."""

    obs_dtype = jnp.float32

    @property
    def observation_size(self) -> int:
        return 3

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "jax"

    def obs(self, x: jax.Array) -> jax.Array:
        return x.astype(self.obs_dtype)

    def reset(self, rng: jax.Array) -> State:
        x = jax.random.uniform(rng, (3,))
        zero = jnp.zeros(())
        return State(x, self.obs(x), zero, zero, {"goal_reached": zero})

    def step(self, state: State, action: jax.Array) -> State:
        x = state.pipeline_state + 0.1 * jnp.pad(action, (0, 1))
        reward = -jnp.sum(x**2)
        done = (reward > -0.01).astype(jnp.float32)
        return state.replace(pipeline_state=x, obs=self.obs(x), reward=reward, done=done,
                             metrics={"goal_reached": done})  # fmt: skip

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        return -obs[..., :2]


class WrongObsShape(Tiny):
    def obs(self, x):
        return jnp.concatenate([x, x[:1]])


class IntegerObs(Tiny):
    obs_dtype = jnp.int32


class NanOnReset(Tiny):
    def reset(self, rng):
        state = super().reset(rng)
        return state.replace(obs=state.obs.at[0].set(jnp.nan))


class InfRewardLater(Tiny):
    def step(self, state, action):
        nxt = super().step(state, action)
        steps = state.info.get("t", 0) + 1
        return nxt.replace(reward=jnp.where(steps >= 3, jnp.inf, nxt.reward), info={"t": steps})

    def reset(self, rng):
        return super().reset(rng).replace(info={"t": jnp.zeros((), jnp.int32)})


class VectorReward(Tiny):
    def step(self, state, action):
        nxt = super().step(state, action)
        return nxt.replace(reward=jnp.stack([nxt.reward, nxt.reward]))

    def reset(self, rng):
        state = super().reset(rng)
        return state.replace(reward=jnp.zeros(2))


class DoneTwo(Tiny):
    def step(self, state, action):
        return super().step(state, action).replace(done=jnp.float32(2.0))


class VectorMetric(Tiny):
    def reset(self, rng):
        return super().reset(rng).replace(metrics={"goal_reached": jnp.zeros(()),
                                                   "where": jnp.zeros(3)})  # fmt: skip

    def step(self, state, action):
        nxt = super().step(state, action)
        return nxt.replace(metrics={**nxt.metrics, "where": nxt.pipeline_state})


class StepAddsMetric(Tiny):
    def step(self, state, action):
        nxt = super().step(state, action)
        return nxt.replace(metrics={**nxt.metrics, "extra": nxt.reward})


class NoActionSize(Tiny):
    @property
    def action_size(self):
        return 0


class WrongBaseline(Tiny):
    def baseline_policy(self, obs):
        return -obs


class BatchMixingBaseline(Tiny):
    def baseline_policy(self, obs):
        return -obs[..., :2] / jnp.linalg.norm(obs)


class LostMetric(Tiny):
    episode_metrics = ("goal_reached", "crashed")


class BadLayout(Tiny):
    goal_layout = GoalLayout(state_size=2, goal_size=2, goal_indices=(0, 1))


BROKEN = [
    (WrongObsShape, "obs", "shape (4,) is not (observation_size,) = (3,)"),
    (IntegerObs, "obs", "dtype int32 is not floating"),
    (NanOnReset, "obs", "NaN or inf on reset"),
    (InfRewardLater, "reward", "NaN or inf on step 3"),
    (VectorReward, "reward", "shape (2,) per env is not a scalar ()"),
    (DoneTwo, "done", "value 2.0 is not 0 or 1"),
    (VectorMetric, "metrics", "'where' has shape (3,), not a scalar ()"),
    (StepAddsMetric, "step", "only step's State has .metrics['extra']"),
    (NoActionSize, "action_size", "0 is not a positive int"),
    (WrongBaseline, "baseline_policy", "one obs gives shape (3,), not (action_size,) = (2,)"),
    (BatchMixingBaseline, "baseline_policy", "a batch of obs gives other actions than each"),
    (LostMetric, "episode_metrics", "names crashed, which State.metrics lacks"),
    (BadLayout, "goal_layout", "state_size + goal_size = 4 != observation_size = 3"),
]


def _finding(report: contract.EnvReport, item: str) -> contract.Finding:
    return next(f for f in report.findings if f.item == item)


def test_a_well_formed_env_passes_with_its_capabilities():
    report = contract.check_env(Tiny(), steps=4)
    assert report.ok and report.problems == (), report.text()
    assert _finding(report, "baseline_policy").status == contract.PRESENT
    assert _finding(report, "goal_reached").status == contract.PRESENT
    assert _finding(report, "goal_layout").status == contract.ABSENT
    assert [f.item for f in report.findings] == [
        i.name for i in (*contract.REQUIRED, *contract.CAPABILITIES)
    ]
    contract.require_env(Tiny())


@pytest.mark.parametrize(("cls", "item", "reason"), BROKEN, ids=[b[0].__name__ for b in BROKEN])
def test_each_breakage_is_reported_as_its_problem(cls, item, reason):
    report = contract.check_env(cls(), steps=4)
    assert not report.ok
    assert report.problems[0].startswith(f"{item}: {reason}"), report.text()
    assert _finding(report, item).status == contract.MALFORMED
    assert f"{item}  " in report.text() and "malformed" in report.text()


def test_require_env_raises_the_first_problem_abstract_evaluation_sees():
    with pytest.raises(RlxError, match=r"^environment WrongObsShape fails the contract: obs: "
                       r"shape \(4,\) is not"):  # fmt: skip
        contract.require_env(WrongObsShape())
    with pytest.raises(RlxError, match="environment mine fails the contract: step: only step's"):
        contract.require_env(StepAddsMetric(), "mine")
    contract.require_env(NanOnReset())  # values: only check_env runs the env


def test_a_missing_method_is_missing_and_the_rest_skipped():
    class NoStep(Tiny):
        step = None

    report = contract.check_env(NoStep())
    assert report.problems[0] == "step: NoStep has no step()"
    assert _finding(report, "step").status == contract.MISSING
    assert _finding(report, "obs").status == contract.SKIPPED


def _own_names() -> list[str]:
    """rlx's own envs; of the MJX squeeze-lift levels (same model, ~10 s to trace) only l1."""
    own = [n for n in envs.names() if not envs.is_physics(n)]
    return [n for n in own if not n.startswith("squeeze_lift_mjx_") or n.endswith("_l1")]


@pytest.mark.parametrize("name", _own_names())
def test_every_own_env_meets_the_contract_abstractly(name):
    contract.require_env(envs.make(name), name)


def test_a_goal_conditioned_env_meets_the_contract_when_run():
    report = rlx.check_env("pointmaze_medium")
    assert report.ok, report.text()
    present = {f.item for f in report.findings if f.status == contract.PRESENT}
    assert {"baseline_policy", "goal_layout", "reset_task", "exact_distance", "draw"} <= present


def test_cli_check_env_prints_the_report_and_exits_0(capsys):
    assert cli.main(["check-env", "squeeze_lift_l1", "--steps", "4", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("squeeze_lift_l1: environment contract (4 envs x 4 steps)")
    assert "danger            present" in out


def test_cli_check_env_of_a_broken_env_exits_2_with_one_error_line(capsys, monkeypatch):
    """An outside env named ``module:ATTR`` (this test module's DoneTwo) is checked and refused."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    assert cli.main(["check-env", "test_env_contract:DoneTwo", "--steps", "2"]) == 2
    captured = capsys.readouterr()
    assert "done              malformed" in captured.out
    assert captured.err == (
        "rlx: error: environment test_env_contract:DoneTwo fails the contract: "
        "done: value 2.0 is not 0 or 1\n"
    )


def test_planning_an_outside_env_that_breaks_the_contract_is_one_error(tmp_path, capsys):
    """An env from outside the package is checked against the contract's shapes when a run is
    planned: ``rlx.train`` raises, ``rlx train`` exits 2 with one line, and nothing is written."""
    with pytest.raises(RlxError, match="WrongObsShape fails the contract: obs: shape"):
        runner.plan("ppo", WrongObsShape)
    runner.plan("ppo", Tiny)  # the well-formed base plans
    out = tmp_path / "run"
    code = cli.main(["train", "--algo", "ppo", "--env", "test_env_contract:IntegerObs",
                     "--seeds", "1", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("rlx: error: environment test_env_contract:IntegerObs fails the contract")
    assert not out.exists() and not list(tmp_path.iterdir())
