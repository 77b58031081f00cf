"""PPO fine-tuning of the SFT policy (algos/sft_ppo.py), HABC's online-RL baseline: GAE over
outcome-rewarded episodes and the clipped surrogate against hand-computed arrays, the
collected episodes' bookkeeping, the critic-only warm-up, bad inputs, and a learning test on
squeeze_lift_l1 (success rises over the SFT start)."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.algos import ppo
from rlx.algos.finetune import common, sft_ppo

import rlx
from rlx import api, cli, envs
from rlx.errors import RlxError
from rlx.learn.distributions import gaussian_log_prob

B = jnp.asarray


def test_episode_advantages_by_hand():
    # Column 0 succeeds at step 2 (step 3 not valid); column 1 runs out of time at step 3.
    reward = B([[0, 0], [0, 0], [1, 0], [0, 0]], jnp.float32)
    end = B([[0, 0], [0, 0], [1, 0], [0, 1]], bool)
    valid = B([[1, 1], [1, 1], [1, 1], [0, 1]], bool)
    values = B([[0.5, 0.1], [0.6, 0.2], [0.7, 0.3], [0.2, 0.4]])
    next_values = B([[0.6, 0.2], [0.7, 0.3], [0.9, 0.4], [0.3, 0.9]])
    adv, targets = sft_ppo.episode_advantages(reward, values, next_values, end, valid, 0.9, 0.5)
    # delta_t = r_t + 0.9 (1 - end_t) V(s_t+1) - V(s_t); A_t = delta_t + 0.45 (1 - end_t) A_t+1;
    # the horizon is terminal: column 1's last step does not bootstrap from V = 0.9.
    expected = [[0.11425, 0.0872], [0.165, 0.016], [0.3, -0.12], [0.0, -0.4]]
    np.testing.assert_allclose(adv, expected, atol=1e-6)
    np.testing.assert_allclose(
        targets, [[0.61425, 0.1872], [0.765, 0.216], [1.0, 0.18], [0.0, 0.0]], atol=1e-6
    )


def test_clipped_surrogate_by_hand():
    # rho = (1.5, 0.5), A standardised = (1, -1), eps = 0.2:
    # min(1.5, 1.2) = 1.2 and min(-0.5, -0.8) = -0.8, so the loss is -(1.2 - 0.8) / 2.
    loss, info = ppo.clipped_surrogate(
        B([np.log(1.5), np.log(0.5)]), B([0.0, 0.0]), B([3.0, 1.0]), 0.2
    )
    np.testing.assert_allclose(loss, -0.2, atol=1e-6)
    kl = ((0.5 - np.log(1.5)) + (-0.5 - np.log(0.5))) / 2
    np.testing.assert_allclose(info["loss/approx_kl"], kl, atol=1e-6)
    np.testing.assert_allclose(info["loss/clip_frac"], 1.0)


def _state(sft: Path, **overrides) -> tuple:
    env = envs.make("squeeze_lift_l1")
    config = sft_ppo.Config(num_envs=16, critic_hidden=(16,), **overrides)
    assets = {"pretrained": common.PRETRAINED.load(sft)}
    return env, sft_ppo.init(jax.random.PRNGKey(0), env, config, assets), assets


@pytest.mark.slow
def test_collected_episodes_end_once_and_reward_the_outcome(sft):
    env, state, _ = _state(sft)
    ep = jax.jit(lambda s: sft_ppo.collect(env, s, jax.random.PRNGKey(3)))(state)
    valid, end = np.asarray(ep.valid), np.asarray(ep.end)
    steps = valid.sum(0)
    assert ep.success.any() and not ep.success.all(), ep.success  # both outcomes occur
    assert (valid == (np.arange(valid.shape[0])[:, None] < steps)).all()  # a prefix
    assert (end.sum(0) == 1).all() and (end[steps - 1, np.arange(valid.shape[1])]).all()
    np.testing.assert_array_equal(np.asarray(ep.reward).sum(0), np.asarray(ep.success))
    mean = common.policy_net(env, state.config).apply(state.policy["mean"], ep.obs)
    log_std = jnp.broadcast_to(state.policy["log_std"], mean.shape)
    np.testing.assert_allclose(ep.log_prob, gaussian_log_prob(ep.action, mean, log_std),
                               rtol=1e-3, atol=1e-4)  # fmt: skip


@pytest.mark.slow
def test_warm_up_fits_only_the_critic(sft):
    env, state, assets = _state(sft, warmup_updates=1)
    step = jax.jit(lambda s: sft_ppo.update(env, s, assets))
    first, warm = step(state)
    jax.tree.map(np.testing.assert_array_equal, first.policy, state.policy)
    assert not np.allclose(first.critic["params"]["MLP_0"]["Dense_0"]["kernel"],
                           state.critic["params"]["MLP_0"]["Dense_0"]["kernel"])  # fmt: skip
    assert float(warm["ppo/policy_steps"]) == 0.0 and float(warm["loss/clip_frac"]) == 0.0
    second, metrics = step(first)
    assert not np.allclose(second.policy["log_std"], first.policy["log_std"])
    assert float(metrics["ppo/policy_steps"]) == state.config.policy_steps


@pytest.mark.parametrize("ratio", [1.0, 1.1, 0.9, 1.5, 0.7])
def test_policy_steps_clip_the_ratio_outside_one_plus_minus_eps(sft, ratio):
    # A frozen policy (policy_lr 0) and pi_old = pi / ratio on every row: each of the 50 steps
    # sees rho = ratio (to the 1e-3 of the stored log-probs), so the clipped share is exactly 0
    # inside [0.8, 1.2] and 1 outside. With A standardised (sum A+ = -sum A-), the surrogate
    # is 0 unclipped and (|rho - 1| - eps) mean|A| / 2 clipped, mean|A| in (0, 1]; mean|A| of
    # these advantages is about 0.73.
    env, state, _ = _state(sft, warmup_updates=0, policy_lr=0.0)
    batch = sft_ppo.to_batch(state, sft_ppo.collect(env, state, jax.random.PRNGKey(3)))
    batch = batch._replace(log_prob=batch.log_prob - np.log(ratio))
    moved, info = jax.jit(lambda b: sft_ppo.improve_policy(env, state, b, jax.random.PRNGKey(4)))(
        batch
    )
    jax.tree.map(np.testing.assert_array_equal, moved.policy, state.policy)
    excess = abs(ratio - 1.0) - 0.2
    assert float(info["loss/clip_frac"]) == (1.0 if excess > 0 else 0.0), info
    if excess > 0:
        assert 0.25 * excess < float(info["loss/policy"]) <= 0.5 * excess, info
    else:
        assert abs(float(info["loss/policy"])) < 1e-5, info


def test_target_kl_stops_the_policy_steps(sft):
    # After the warm-up the first step starts at pi_old (approx KL 0) and is taken; with a tiny
    # target every later minibatch is over it, so exactly one step is taken. A target no step
    # reaches gives the same update as none.
    env, state, assets = _state(sft, warmup_updates=1, target_kl=1e-9)
    one = jax.jit(lambda s: sft_ppo.update(env, s, assets))
    warm, _ = one(state)
    stopped, metrics = one(warm)
    assert float(metrics["ppo/policy_steps"]) == 1.0
    assert not np.allclose(stopped.policy["log_std"], warm.policy["log_std"])
    free = [one(warm.replace(config=warm.config.replace(target_kl=t))) for t in (0.0, 1e9)]
    assert float(free[0][1]["ppo/policy_steps"]) == warm.config.policy_steps
    jax.tree.map(np.testing.assert_array_equal, free[0][0].policy, free[1][0].policy)
    moved = [
        np.abs(s.policy["log_std"] - warm.policy["log_std"]).max() for s in (stopped, free[0][0])
    ]
    assert moved[0] < moved[1], moved


@pytest.mark.parametrize(
    "overrides, message",
    [({"init_std": 0.0}, "init_std must be > 0"), ({"gamma": 1.5}, "gamma must be in (0, 1]"),
     ({"total_steps": 40}, "multiple of num_envs=32"),
     ({"warmup_updates": -1}, "warmup_updates must be >= 0"),
     ({"target_kl": -0.1}, "target_kl must be >= 0")],
)  # fmt: skip
def test_bad_config_values_are_named(overrides, message):
    with pytest.raises(RlxError, match=message.replace("(", r"\(").replace("]", r"\]")):
        sft_ppo.Config(**overrides).validate()


def test_missing_pretrained_policy_and_env_without_outcome(capsys, tmp_path):
    argv = ["train", "--algo", "sft_ppo", "--env", "squeeze_lift_l1", "--seeds", "1", "--set",
            "total_steps=32", "--num-evals", "1", "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing asset(s) pretrained" in err[0], err
    assert not (tmp_path / "o").exists()

    class NoSuccess:  # an env whose only episode outcome is a distance
        episode_metrics = ("distance",)

    with pytest.raises(
        RlxError, match=r"report success \(goal_reached\); NoSuccess reports distance"
    ):
        sft_ppo.check_env(NoSuccess(), sft_ppo.Config())


@pytest.mark.slow
def test_ppo_fine_tuning_raises_success_over_sft(sft):
    res = api.train(
        "sft_ppo", "squeeze_lift_l1", seeds=2, num_evals=1, eval_episodes=256,
        overrides={"total_steps": 1024, "critic_hidden": (64, 64)},
        assets={"pretrained": sft}, progress=False,
    )  # fmt: skip
    curves = np.array([r["curve"]["eval/goal_reached"] for r in res.record["runs"]])
    assert curves[:, -1].mean() >= curves[:, 0].mean() + 0.1, curves


@pytest.mark.slow
def test_exported_policy_acts_as_the_training_state(sft, tmp_path):
    res = api.train(
        "sft_ppo", "squeeze_lift_l1", seeds=2, num_evals=1, eval_episodes=16,
        overrides={"total_steps": 96, "critic_hidden": (16,)}, assets={"pretrained": sft},
        progress=False,
    )  # fmt: skip
    path = res.export_policy(tmp_path / "p", run=1)
    meta = json.loads((path / "policy.json").read_text())
    assert {key.split("/")[0] for key in meta["params"]} == {"policy", "log_std", "obs_stats"}
    loaded = rlx.load_policy(path)
    obs = jax.random.normal(jax.random.PRNGKey(5), (32, 9))
    keys = jax.random.split(jax.random.PRNGKey(6), 32)

    def actions(policy, deterministic: bool) -> np.ndarray:
        return np.asarray(jax.vmap(lambda o, k: policy(o, k, deterministic))(obs, keys))

    for deterministic in (True, False):
        np.testing.assert_array_equal(
            actions(loaded, deterministic), actions(res.policy(1), deterministic)
        )
    assert not np.array_equal(
        res.run_state(0).policy["log_std"], res.run_state(1).policy["log_std"]
    )
