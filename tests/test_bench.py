"""The benchmark's plumbing (no timings asserted): the 1-run program path, the matched settings
mapping to both learners, the peer worker's network options, the compile-span arithmetic,
and the learning comparison (`rlx bench --learning`)."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlx.bench import brax_ppo_worker, compile_time, learning, matched
from rlx.runner import programs


def _net(x, w):
    return jnp.tanh(x @ w["a"]) @ w["b"], {"sum": (x * x).sum(-1)}


def test_over_runs_single_run_equals_vmap_and_keeps_the_run_axis():
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(k[0], (1, 5, 4))
    w = {"a": jax.random.normal(k[1], (4, 8)), "b": jax.random.normal(k[2], (8, 2))}
    single = jax.jit(programs.over_runs(_net, (0, None), 1))(x, w)
    batched = jax.jit(jax.vmap(_net, in_axes=(0, None)))(x, w)
    assert jax.tree.map(jnp.shape, single) == jax.tree.map(jnp.shape, batched)
    for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(batched), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    many = programs.over_runs(_net, (0, None), 3)
    assert jax.eval_shape(many, jnp.zeros((3, 5, 4)), w)[0].shape == (3, 5, 2)


@pytest.mark.parametrize("name", list(matched.MATCHED))
def test_matched_settings_give_both_learners_the_same_update(name):
    case = matched.MATCHED[name]
    s = case["settings"]
    total = case["quick_steps"]
    ours = matched.rlx_overrides(s, total)
    brax, network = matched.brax_kwargs(s, total, seed=0, eval_episodes=4)
    # one Brax training step (batch_size x num_minibatches envs x unroll) is one rlx update
    assert brax["batch_size"] * brax["num_minibatches"] == ours["num_envs"] == brax["num_envs"]
    assert brax["unroll_length"] == ours["unroll_length"]
    assert brax["num_updates_per_batch"] == ours["num_epochs"]
    assert brax["num_timesteps"] == total and (brax["num_evals"] - 1) >= 3
    assert (brax["num_timesteps"] // (ours["num_envs"] * ours["unroll_length"])) % (
        brax["num_evals"] - 1
    ) == 0
    pairs = [("learning_rate", "learning_rate"), ("entropy_coef", "entropy_cost"),
             ("gamma", "discounting"), ("gae_lambda", "gae_lambda"),
             ("clip_eps", "clipping_epsilon"), ("reward_scaling", "reward_scaling"),
             ("max_grad_norm", "max_grad_norm"), ("episode_length", "episode_length")]  # fmt: skip
    for a, b in pairs:
        assert ours[a] == brax[b], (a, b)
    assert tuple(brax["policy_hidden_layer_sizes"]) == ours["policy_hidden"] == s["hidden"]
    assert tuple(brax["value_hidden_layer_sizes"]) == ours["value_hidden"]
    assert ours["anneal_lr"] is False and brax["learning_rate_schedule"] is None
    assert network["activation"] == ours["activation"]
    assert network["distribution_type"] == "normal" and network["noise_std_type"] == "log"
    wider, _ = matched.brax_kwargs(s, total, seed=0, eval_episodes=4, env_factor=8)
    assert wider["num_envs"] == 8 * s["num_envs"] and wider["num_timesteps"] == 8 * total
    assert wider["batch_size"] * wider["num_minibatches"] == wider["num_envs"]


def test_worker_turns_network_options_into_the_brax_network_factory():
    from flax import linen

    spec = {"settings": {"policy_hidden_layer_sizes": [256, 256], "num_envs": 4},
            "network": {"activation": "tanh", "distribution_type": "normal"}}  # fmt: skip
    kwargs = brax_ppo_worker._train_kwargs(spec)
    factory = kwargs.pop("network_factory")
    assert isinstance(factory, functools.partial) and kwargs == {"num_envs": 4}
    assert factory.keywords == {"policy_hidden_layer_sizes": (256, 256),
                                "activation": linen.tanh, "distribution_type": "normal"}  # fmt: skip
    with pytest.raises(ValueError, match="unknown"):
        brax_ppo_worker._train_kwargs({"network": {"dropout": 0.1}})


@pytest.mark.slow
def test_worker_times_the_raw_env_instead_of_training_when_asked(monkeypatch):
    """The worker's raw-env mode, run as the peer would run it (a subprocess reading its spec
    from stdin and printing one JSON line), here with this venv's python."""
    import sys
    from pathlib import Path

    from rlx.bench import peer

    spec = {"env": "pendulum_swingup", "backend": None,
            "raw_env": {"num_envs": 4, "episode_length": 8, "steps": 10, "reps": 1}}  # fmt: skip
    monkeypatch.setattr(peer, "peer_venv", lambda root=None: Path(sys.executable))
    out = peer._run_worker(spec, timeout_s=300, venv_root=None, echo_stderr=False)
    assert out["env_steps_per_s"] > 0 and "train_env_steps_per_s" not in out
    assert out["versions"]["jax"] == jax.__version__


def test_compile_seconds_are_the_union_of_overlapping_spans(monkeypatch):
    monkeypatch.setattr(matched.Spans, "spans", [(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (-2.0, 9.0)])
    assert matched.Spans.seconds_since(0.0) == pytest.approx(4.0)  # [0, 3] and [5, 6]
    assert matched.Spans.seconds_since(4.0) == pytest.approx(1.0)


HW = {"backend": "cpu", "cpu": "test CPU", "cpu_cores": 2, "device_count": 1}


def test_matched_rows_pool_untrained_and_final_returns_per_seed_count():
    def rep(final, initial, rate=10.0):
        return {"env_steps_per_s": rate, "compile_s": 1.0, "returns": final,
                "initial_returns": initial}  # fmt: skip

    one = matched.summarise("one", 1, [rep([3.0], [-1.0]), rep([5.0], [-3.0], rate=20.0)])
    assert (one["return_mean"], one["initial_mean"], one["initial_std"]) == (4.0, -2.0, 1.0)
    assert (one["rate_mean"], one["rate_std"]) == (15.0, 5.0)
    # N-seed rows report the first repetition's seeds (later repetitions repeat them).
    many = matched.summarise("many", 2, [rep([1.0, 3.0], [0.0, -4.0]), rep([9.0, 9.0], [9.0, 9.0])])
    assert (many["return_mean"], many["initial_mean"]) == (2.0, -2.0)
    report = {"provenance": {"hardware": HW, "versions": {"python": "3", "jax": "j", "brax": "b",
              "mujoco-mjx": "m"}, "git": "g", "date": "d"}, "command": "c", "reps": 2,
              "cases": {"env": {"total_steps": 8, "settings": {}, "rows": [one]}}}  # fmt: skip
    assert "| -2.0 ± 1.0 | 4.0 ± 1.0 |" in matched.table(report)
    assert "| one | 15 ± 5 | n/ax | n/a |" in matched.table(report)  # no raw rate: old reports
    one["raw_rate"] = 60.0
    assert "| one | 15 ± 5 | n/ax | 0.25 | 60 |" in matched.table(report)


def test_run_case_gives_every_row_the_raw_env_rate_at_its_envs(monkeypatch):
    from rlx.bench import throughput

    monkeypatch.setitem(matched.MATCHED, "pendulum_swingup", TINY_PENDULUM)
    asked = []

    def raw(name, backend, num_envs, episode_length, steps, reps=1):
        asked.append(num_envs)
        return {"env_steps_per_s": 1000.0 * num_envs}

    def row(name, case, seeds, total_steps):  # training itself: test_peer_rows_... below
        return {"env_steps_per_s": 1.0, "compile_s": 0.0, "returns": [0.0] * len(seeds),
                "initial_returns": [0.0] * len(seeds)}  # fmt: skip

    monkeypatch.setattr(throughput, "raw_env_rate", raw)
    monkeypatch.setattr(matched, "rlx_row", row)
    rows = matched.run_case("pendulum_swingup", [1, 2], reps=1, total_steps=64, peer=False)
    assert asked == [8, 16]  # 8 envs per seed
    assert [r["raw_rate"] for r in rows] == [8000.0, 16000.0]


@pytest.mark.slow
def test_peer_rows_are_set_against_the_raw_env_on_the_peers_stack(monkeypatch):
    from rlx.bench import peer, throughput

    monkeypatch.setitem(matched.MATCHED, "pendulum_swingup", TINY_PENDULUM)
    monkeypatch.setattr(throughput, "raw_env_rate", lambda *a, **k: {"env_steps_per_s": 10.0})
    monkeypatch.setattr(peer, "peer_raw_env_rate", lambda *a, **k: {"env_steps_per_s": 30.0})
    monkeypatch.setattr(matched, "_peer_row", lambda *a: {"row": "Brax PPO, 1 seed per process"})
    rows = matched.run_case("pendulum_swingup", [1], reps=1, total_steps=64, peer=True)
    assert [(r["row"][:4], r["raw_rate"]) for r in rows] == [("rlx ", 10.0), ("Brax", 30.0)]


def test_compile_split_counts_each_kind_inside_the_window():
    rec = compile_time._Recorder.__new__(compile_time._Recorder)
    rec.spans = [
        (compile_time.EVENTS["trace"], 1.0, 1.5),
        (compile_time.EVENTS["lower"], 1.5, 2.0),
        (compile_time.EVENTS["xla"], 2.0, 4.0),
        (compile_time.EVENTS["xla"], 9.0, 10.0),  # another program's
        ("/jax/other", 1.0, 2.0),
    ]
    assert rec.split(1.0, 5.0) == {"trace": 0.5, "lower": 0.5, "xla": 2.0}


TINY_PENDULUM = {
    "backend": None, "total_steps": 0, "quick_steps": 0, "eval_episodes": 2,
    "settings": dict(
        num_envs=8, unroll_length=4, num_minibatches=2, num_epochs=1, hidden=(16, 16),
        activation="tanh", learning_rate=1e-3, gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
        entropy_coef=0.0, reward_scaling=0.1, max_grad_norm=0.5, episode_length=8,
    ),
}  # fmt: skip


@pytest.mark.slow
def test_breakdown_counts_both_networks_flops_in_a_learner_step(monkeypatch):
    monkeypatch.setitem(matched.MATCHED, "pendulum_swingup", TINY_PENDULUM)
    b = matched.breakdown("pendulum_swingup")
    # Policy and value nets, each 3 -> 16 -> 16 -> 1 (320 weights), on 8 x 4 / 2 = 16 rows:
    # forward and weight-gradient dots alone are 2 x 2 x rows x weights flops per net.
    dots = 2 * 2 * 16 * (2 * 320)
    assert dots <= b["grad_step_gflop"] * 1e9 <= 10 * dots
    assert b["matmul_gflops"] > 0
    assert b["grad_steps_per_update"] == 2
    assert 0 < b["optimiser_ms"] and 0 < b["raw_unroll_ms"]
    assert 0 < b["learner_matmul_share"] < 1 and b["learner_kernels_per_step"] > 10


@pytest.mark.slow
def test_breakdown_of_two_seeds_maps_every_part_over_the_seeds(monkeypatch):
    monkeypatch.setitem(matched.MATCHED, "pendulum_swingup", TINY_PENDULUM)
    b = matched.breakdown("pendulum_swingup", seeds=2)
    assert b["seeds"] == 2 and b["grad_steps_per_update"] == 2
    parts = ("raw_env_ms", "raw_unroll_ms", "rollout_ms", "learner_ms", "optimiser_ms", "update_ms")
    assert all(b[k] > 0 for k in parts)
    assert "learner_matmul_share" not in b and "grad_step_gflop" not in b  # one seed only


@pytest.mark.parametrize("seeds", [1, 3])
def test_over_seeds_batches_the_parts_only_for_several_seeds(seeds):
    a, b = jnp.ones((seeds, 2, 3)), jnp.ones((seeds, 3, 4))
    fn = matched._over_seeds(lambda x, y: x @ y, seeds)
    (eqn,) = [e for e in jax.make_jaxpr(fn)(a, b).eqns[0].params["jaxpr"].eqns
              if e.primitive.name == "dot_general"]  # fmt: skip
    (_, (batch_dims, _)) = eqn.params["dimension_numbers"]
    assert batch_dims == (() if seeds == 1 else (0,))  # as the training program (over_runs)
    assert fn(a, b).shape == (seeds, 2, 4)


@pytest.mark.slow
def test_optimiser_call_steps_each_seed_with_its_own_gradient():
    from rlx.algos import ppo

    from rlx import runner

    s = TINY_PENDULUM["settings"]
    rp = runner.plan("ppo", "pendulum_swingup", seeds=2,
                     overrides=matched.rlx_overrides(s, 64), num_evals=1, eval_episodes=1)  # fmt: skip
    env = rp.make_env()
    init = jax.vmap(lambda key: ppo.init(key, env, rp.base_config))
    states = jax.jit(init)(jax.random.split(jax.random.PRNGKey(0), 2))
    _, traj = jax.jit(jax.vmap(lambda st: ppo.rollout(env, st, st.key)))(states)
    flat = jax.jit(jax.vmap(lambda st, t: ppo.learner_batch(env, st, t)))(states, traj)
    program, args = matched.optimiser_call(env, states, flat, steps=3, seeds=2)
    params, _ = program(*args)
    for seed in (0, 1):
        st, grads, mine = jax.tree.map(lambda x, i=seed: x[i], (states, args[1], params))
        mb = jax.tree.map(lambda x, i=seed: x[i], flat)
        own = jax.jit(jax.grad(matched.ppo_loss(env, st), has_aux=True))(st.params, mb)[0]
        jax.tree.map(
            lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-7), grads, own
        )
        carry = (st.params, st.opt_state)
        for _ in range(3):
            carry = ppo.apply_step(ppo.optimizer(st.config), 1e-4, grads, *carry)
        jax.tree.map(
            lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-8), mine, carry[0]
        )
    leaves = jax.tree.leaves(args[1])
    assert not all(np.allclose(x[0], x[1]) for x in leaves)  # the seeds' gradients differ


@pytest.mark.slow
def test_raw_unroll_steps_the_training_env_one_unroll_without_a_policy():
    from rlx import runner
    from rlx.runner.execute import Batch

    s = TINY_PENDULUM["settings"]
    rp = runner.plan("ppo", "pendulum_swingup", seeds=1,
                     overrides=matched.rlx_overrides(s, 64), num_evals=1, eval_episodes=1)  # fmt: skip
    batch = Batch.make(rp, jax.devices(), None)
    keys, configs = batch.inputs([0])
    state = jax.tree.map(lambda x: x[0], batch.programs_for([0]).init(keys, configs, batch.assets))
    after = matched.raw_unroll(batch.env, state.config)(state)
    # 8 envs, all reset at step 0; one unroll is 4 steps of an 8-step episode.
    np.testing.assert_array_equal(np.asarray(after.info["steps"]), np.full(8, 4.0))


def test_breakdown_lines_split_the_learner_into_optimiser_and_gradients():
    b = {"seeds": 1, "raw_env_ms": 20.0, "raw_unroll_ms": 24.0, "rollout_ms": 26.0,
         "learner_ms": 28.0, "optimiser_ms": 7.0, "update_ms": 50.0, "grad_steps_per_update": 128,
         "learner_matmul_share": 0.475, "learner_kernels_per_step": 135.2}  # fmt: skip
    text = "\n".join(matched._breakdown_lines([b]))
    assert "| 1 | 20.0 | 24.0 | 26.0 | 28.0 (128) | 7.0 | 50.0 | 0.40 | 0.42 |" in text
    assert "adds 2.0 ms to the 24.0 ms" in text and "7.0 ms, 25% of the learner" in text
    assert text.count("---:|") == 9
    assert "135 XLA kernels per gradient step" in text and "take 48% of" in text
    assert "copies) 52%." in text
    assert "seeds in one program" not in text


def test_breakdown_lines_give_a_row_and_the_growth_of_each_part_per_seed_count():
    one = {"seeds": 1, "raw_env_ms": 20.0, "raw_unroll_ms": 24.0, "rollout_ms": 26.0,
           "learner_ms": 28.0, "optimiser_ms": 7.0, "update_ms": 50.0,
           "grad_steps_per_update": 128}  # fmt: skip
    eight = {**one, "seeds": 8, "raw_env_ms": 140.0, "raw_unroll_ms": 150.0, "rollout_ms": 156.0,
             "learner_ms": 168.0, "optimiser_ms": 42.0, "update_ms": 325.0}  # fmt: skip
    text = "\n".join(matched._breakdown_lines([one, eight]))
    # 140 / (140 + 168) = 0.45; 140 / 325 = 0.43.
    assert "| 8 | 140.0 | 150.0 | 156.0 | 168.0 (128) | 42.0 | 325.0 | 0.43 | 0.45 |" in text
    assert ("8 seeds in one program: the raw env's 8x envs take 7.0x one seed's time, the "
            "rollout 6.0x, the learner 6.0x (its optimiser 6.0x) and the whole update 6.5x.") in text  # fmt: skip


def test_table_renders_a_report_from_before_the_per_seed_breakdowns():
    b = {"raw_env_ms": 20.0, "rollout_ms": 26.0, "learner_ms": 28.0, "update_ms": 50.0,
         "grad_steps_per_update": 128}  # fmt: skip
    report = {"provenance": {"versions": {"python": "3.11", "jax": "x", "brax": "y",
                                          "mujoco-mjx": "z"}, "hardware": {"backend": "cpu", "cpu": "c",
                                                               "cpu_cores": 2, "device_count": 1},
                             "git": "abc", "date": "d"},
              "command": "rlx bench --matched", "reps": 3,
              "cases": {"e": {"total_steps": 10, "settings": {}, "rows": [], "breakdown": b}}}  # fmt: skip
    assert "| 1 | 20.0 | 26.0 | 28.0 (128) | 50.0 | 0.40 | 0.42 |" in matched.table(report)


def test_flop_line_gives_the_learner_rate_against_the_matmul_rate():
    b = {"grad_steps_per_update": 128, "grad_step_gflop": 0.01, "learner_ms": 32.0,
         "matmul_gflops": 200.0}  # fmt: skip
    line = matched._flop_line(b)
    # 1.28 GFLOP in 32 ms = 40 GFLOP/s = 20% of 200; at 200 GFLOP/s: 6.4 ms.
    assert "10.00 MFLOP" in line and "1.280 GFLOP per update" in line
    assert "40.0 GFLOP/s, 20% of" in line and "would take 6.4 ms" in line


def test_timed_interleaved_alternates_the_parts_in_every_round():
    order = []

    def part(name):
        return lambda x: order.append(name) or jnp.asarray(x)

    ms = matched.timed_interleaved({"a": (part("a"), (1.0,)), "b": (part("b"), (2.0,))},
                                   rounds=3, reps=2)  # fmt: skip
    # One warm-up call each, then per round two calls of a, then two of b.
    assert order == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert set(ms) == {"a", "b"} and all(v > 0 for v in ms.values())


@pytest.mark.parametrize("failure", ["no names", "profiler error"])
def test_learner_kernels_are_left_out_when_the_trace_names_no_kernel(monkeypatch, failure):
    from rlx.bench import kernel_profile

    def kernel_times(compiled, *args, calls):
        if failure == "profiler error":
            raise RuntimeError("no CUPTI")
        return kernel_profile.KernelTimes(0.0, 0.0, 0.0, 1.0)

    monkeypatch.setattr(kernel_profile, "kernel_times", kernel_times)
    assert matched.learner_kernels(None, None, None, grad_steps=4) == {}


# `rlx bench --learning`: the case, each run's curve, the curve table, the files.

PROV = {"hardware": HW, "versions": {"python": "3", "jax": "j", "brax": "b", "mujoco-mjx": "m"},
        "git": "g", "date": "d"}  # fmt: skip


def test_case_is_the_matched_case_with_eight_times_the_envs():
    c, base = learning.case(), matched.MATCHED["brax:ant"]
    assert c["settings"]["num_envs"] == 8 * base["settings"]["num_envs"] == 1024
    assert {k: v for k, v in c["settings"].items() if k != "num_envs"} == {
        k: v for k, v in base["settings"].items() if k != "num_envs"
    }
    kwargs, _ = matched.brax_kwargs(c["settings"], learning.TOTAL_STEPS, 0, 16)
    assert kwargs["batch_size"] * kwargs["num_minibatches"] == 1024  # 160 env steps a minibatch
    assert kwargs["num_timesteps"] == learning.TOTAL_STEPS


def _rep(steps, curve, rate=10.0, versions=None):
    return {"env_steps_per_s": rate, "compile_s": 2.0, "returns": [curve[-1]],
            "initial_returns": [curve[0]], "curve_steps": steps, "curves": [curve],
            "versions": versions}  # fmt: skip


def test_curve_table_gives_mean_and_std_over_runs_at_each_point():
    ours = matched.summarise("rlx", 1, [_rep([0, 5], [1.0, 10.0]), _rep([0, 5], [3.0, 20.0])])
    peer = matched.summarise("Brax PPO", 1, [_rep([0, 5], [0.0, 4.0], 5.0, {"brax": "0.14"}),
                                             _rep([0, 5], [0.0, 8.0], 5.0)])  # fmt: skip
    steps, y = learning.curves(ours)
    assert steps == [0, 5] and y.tolist() == [[1.0, 10.0], [3.0, 20.0]]
    ours["raw_rate"], peer["raw_rate"] = 40.0, 10.0
    report = {"provenance": PROV, "rows": [ours, peer], "settings": {}, "eval_episodes": 16,
              "command": "c", "total_steps": 5}  # fmt: skip
    text = learning.table(report)
    assert "| 0 | 2.0 ± 1.0 | 0.0 ± 0.0 |" in text
    assert "| 5 | 15.0 ± 5.0 | 6.0 ± 2.0 |" in text
    assert "| rlx | 10 ± 0 | 2.00x | 0.25 | 40 | 2.0 | 2.0 | 2.0 ± 1.0 | 15.0 ± 5.0 |" in text
    assert "| Brax PPO | 5 ± 0 | 1.00x | 0.50 | 10 |" in text
    assert "- peer: brax 0.14" in text


def test_curves_refuse_runs_evaluated_at_different_points():
    row = matched.summarise("rlx", 1, [_rep([0, 5], [1.0, 2.0]), _rep([0, 6], [1.0, 2.0])])
    with pytest.raises(ValueError, match="evaluation points differ"):
        learning.curves(row)


@pytest.mark.slow
def test_main_records_every_runs_curve_and_writes_the_table_and_plot(monkeypatch, tmp_path):
    from rlx.bench import throughput

    monkeypatch.setattr(learning, "ENV", "pendulum_swingup")
    monkeypatch.setitem(matched.MATCHED, "pendulum_swingup", TINY_PENDULUM)
    monkeypatch.setattr(throughput, "raw_env_rate", lambda *a, **k: {"env_steps_per_s": 1e4})
    monkeypatch.setattr(learning, "QUICK_STEPS", 64 * 4 * 10)  # 10 updates of 64 envs x 4
    path = learning.main(tmp_path, reps=2, quick=True, peer=False)
    report = json.loads((tmp_path / "learning.json").read_text())
    (row,) = report["rows"]
    steps, y = learning.curves(row)
    assert steps == list(range(0, 2561, 256))
    assert y.shape == (2, 11) and np.all(np.isfinite(y))
    assert y[:, -1].tolist() == row["returns"]
    assert not np.array_equal(y[0], y[1])  # seeds 0 and 1
    assert "| 2,560 |" in path.read_text()
    assert (tmp_path / "learning.png").stat().st_size > 0


def test_bench_command_dispatches_its_options_to_the_python_function(tmp_path, monkeypatch, capsys):
    """`rlx bench --matched ...` calls `rlx.bench.command.run`'s matched benchmark with the
    parsed values and prints the table it wrote; an unknown env is one error line."""
    from rlx import cli

    calls = []

    def fake(out, names, seed_counts, reps, quick, peer):
        calls.append((out, names, seed_counts, reps, quick, peer))
        (out / "matched.md").parent.mkdir(parents=True, exist_ok=True)
        (out / "matched.md").write_text("| the table |")
        return out / "matched.md"

    monkeypatch.setattr(matched, "main", fake)
    monkeypatch.setattr(cli, "_setup_jax", lambda args: None)
    monkeypatch.setenv("RLX_COMPILATION_CACHE", "unused")  # cmd_bench clears it
    argv = ["bench", "--matched", "--seeds", "1,2", "--reps", "2", "--no-peer", "--quick"]
    assert cli.main([*argv, "--out", str(tmp_path)]) == 0
    assert calls == [(tmp_path, list(matched.MATCHED), [1, 2], 2, True, False)]
    assert "| the table |" in capsys.readouterr().out
    assert cli.main(["bench", "--scaling", "--envs", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown scaling bench environment 'nope'" in capsys.readouterr().err
