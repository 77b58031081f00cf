"""`rlx bench`: training throughput of rlx PPO vs the raw environment vs Brax's own PPO.

For each benchmark case (an environment with one PPO setting) it measures, in one process:

(a) the raw environment: env steps/s of the training-wrapped env (episode limit, auto-reset)
    under uniform random actions, ``num_envs x seeds`` envs stepped inside one `lax.scan`;
(b) rlx PPO training for 1, 8 and 32 seeds (one vmapped program), env steps/s over the
    training chunks (compile and evaluation excluded), compile seconds, final eval return;
(c) the peer: Brax's own PPO with the same settings in its own venv (one seed per process:
    Brax cannot vmap over seeds), steady-state env steps/s, compile seconds, final return.

It writes ``bench.json`` (every figure and setting) and ``README.md`` (the table) to the output
directory. The learner's overhead is b/a; the comparison with the peer is b/peer.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlx import envs, runner
from rlx.provenance import describe_hardware, provenance

# PPO settings shared by rlx and the peer: num_minibatches divides num_envs, so one Brax
# training step (batch_size * num_minibatches = num_envs trajectories of unroll_length) is
# exactly one rlx update.
CASES: dict[str, dict[str, Any]] = {
    "pendulum_swingup": {
        "backend": None,
        "eval_episodes": 16,
        "num_evals": 10,
        "peer_seeds": 3,
        "ppo": dict(
            total_steps=300_000,
            num_envs=100,
            unroll_length=30,
            num_minibatches=5,
            num_epochs=10,
            policy_hidden=(64, 64),
            value_hidden=(64, 64),
            learning_rate=1e-3,
            gamma=0.99,
            gae_lambda=0.95,
            clip_eps=0.2,
            entropy_coef=0.0,
            reward_scaling=0.1,
            max_grad_norm=0.5,
            episode_length=200,
        ),
    },
    "brax:ant": {
        "backend": "mjx",
        "eval_episodes": 4,
        "num_evals": 2,
        "peer_seeds": 1,
        "ppo": dict(
            total_steps=24_576,
            num_envs=128,
            unroll_length=16,
            num_minibatches=4,
            num_epochs=4,
            policy_hidden=(64, 64),
            value_hidden=(64, 64),
            learning_rate=3e-4,
            gamma=0.97,
            gae_lambda=0.95,
            clip_eps=0.2,
            entropy_coef=1e-3,
            reward_scaling=0.1,
            max_grad_norm=1.0,
            episode_length=1000,
        ),
    },
}
QUICK_SCALE = {"pendulum_swingup": 60_000, "brax:ant": 8_192}


def random_steps(
    tenv: Any, num_envs: int, action_size: int, state: Any, keys: jax.Array
) -> tuple[Any, jax.Array]:
    """One step of `tenv` per key under uniform random actions in [-1, 1]: the final state and
    each step's mean reward over the envs (the raw env of the throughput benchmarks)."""

    def body(s, k):
        a = jax.random.uniform(k, (num_envs, action_size), minval=-1.0, maxval=1.0)
        s = tenv.step(s, a)
        return s, s.reward.mean()

    return jax.lax.scan(body, state, keys)


def raw_env_rate(
    name: str,
    backend: str | None,
    num_envs: int,
    episode_length: int,
    steps: int,
    reps: int = 1,
) -> dict:
    """(a): env steps/s of the training-wrapped env under random actions, compile excluded;
    the median over `reps` timed calls."""
    env = envs.make(name, **({"backend": backend} if backend else {}))
    tenv = envs.wrap_for_training(env, episode_length, resample=not envs.is_physics(name))

    def rollout(key):
        k_reset, k_act = jax.random.split(key)
        state = tenv.reset(jax.random.split(k_reset, num_envs))
        keys = jax.random.split(k_act, steps)
        return random_steps(tenv, num_envs, env.action_size, state, keys)[1].sum()

    t0 = time.perf_counter()
    compiled = jax.jit(rollout).lower(jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t0
    compiled(jax.random.PRNGKey(1)).block_until_ready()  # warm
    times = []
    for rep in range(reps):
        t0 = time.perf_counter()
        compiled(jax.random.PRNGKey(2 + rep)).block_until_ready()
        times.append(time.perf_counter() - t0)
    elapsed = float(np.median(times))
    return {
        "env_steps_per_s": num_envs * steps / elapsed,
        "compile_s": compile_s,
        "num_envs": num_envs,
    }


def ours(name: str, case: dict, seeds: int, total_steps: int) -> dict:
    """(b): rlx PPO on `seeds` seeds in one program."""
    ppo = {**case["ppo"], "total_steps": total_steps}
    rp = runner.plan(
        "ppo", name, seeds=seeds, overrides={**ppo, "total_steps": total_steps},
        num_evals=case["num_evals"], eval_episodes=case["eval_episodes"],
        env_kwargs={"backend": case["backend"]} if case["backend"] else {},
    )  # fmt: skip
    rec = runner.run(rp, progress=False)
    finals = [r["final"]["eval/return"] for r in rec["runs"]]
    return {
        "seeds": seeds,
        "env_steps_per_s": rec["timing"]["env_steps_per_s"],
        "compile_s": rec["timing"]["compile_s"],
        "train_s": rec["timing"]["train_s"],
        "final_return_mean": float(np.mean(finals)),
        "final_return_std": float(np.std(finals)),
        "untrained_return_mean": float(
            np.mean([r["curve"]["eval/return"][0] for r in rec["runs"]])
        ),
    }


def peer_settings(case: dict, total_steps: int, seed: int) -> dict:
    """The Brax ppo.train keyword arguments equivalent to the rlx PPO settings."""
    p = case["ppo"]
    steps_per_update = p["num_envs"] * p["unroll_length"]
    updates = total_steps // steps_per_update
    # Brax runs num_evals - 1 training epochs of equal length and needs >= 3 of them for a
    # steady-state rate (it compiles in epochs 1 and 2): pick the fewest epochs >= 5 that
    # divide the updates, so both learners get exactly the same budget.
    epochs = next((e for e in range(5, updates + 1) if updates % e == 0), updates)
    evals = epochs + 1
    return dict(
        num_timesteps=updates * steps_per_update,
        num_envs=p["num_envs"],
        episode_length=p["episode_length"],
        unroll_length=p["unroll_length"],
        batch_size=p["num_envs"] // p["num_minibatches"],
        num_minibatches=p["num_minibatches"],
        num_updates_per_batch=p["num_epochs"],
        learning_rate=p["learning_rate"],
        entropy_cost=p["entropy_coef"],
        discounting=p["gamma"],
        gae_lambda=p["gae_lambda"],
        clipping_epsilon=p["clip_eps"],
        reward_scaling=p["reward_scaling"],
        max_grad_norm=p["max_grad_norm"],
        normalize_observations=True,
        num_evals=evals,
        num_eval_envs=case["eval_episodes"],
        deterministic_eval=True,
        seed=seed,
        policy_hidden_layer_sizes=list(p["policy_hidden"]),
        value_hidden_layer_sizes=list(p["value_hidden"]),
    )


def peer(name: str, case: dict, total_steps: int, seeds: int) -> dict:
    """(c): Brax's own PPO, one process per seed."""
    from rlx.bench.peer import run_brax_ppo

    results = [
        run_brax_ppo(name, peer_settings(case, total_steps, seed), backend=case["backend"])
        for seed in range(seeds)
    ]
    rates = [r["train_env_steps_per_s"] for r in results if r.get("train_env_steps_per_s")]
    finals = [r["final_eval_return"] for r in results]
    return {
        "seeds": seeds,
        "env_steps_per_s": float(np.mean(rates)) if rates else math.nan,
        "compile_s": float(np.mean([r["compile_s"] or math.nan for r in results])),
        "final_return_mean": float(np.mean(finals)),
        "final_return_std": float(np.std(finals)),
        "env_steps": results[0].get("env_steps"),
        "versions": results[0].get("versions"),
        "device": results[0].get("device"),
    }


def fmt_number(x: float | None, digits: int = 0) -> str:
    """`x` with thousands separators and `digits` decimals; "n/a" for None or NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def table(report: dict) -> str:
    """The Markdown table of a bench report."""
    prov = report["provenance"]
    v = prov["versions"]
    lines = [
        "# Throughput: rlx PPO vs the raw environment vs Brax PPO, each at its defaults",
        "",
        f"- hardware: {describe_hardware(prov['hardware'])}",
        f"- rlx: python {v['python']}, jax {v['jax']}, flax {v['flax']}, brax {v['brax']}, "
        f"mujoco {v['mujoco']}, mujoco-mjx {v['mujoco-mjx']}; git {prov['git']}; {prov['date']}",
        f"- command: `{report['command']}`",
        "",
        "(a) raw env: training-wrapped env under random actions, num_envs x seeds envs in one "
        "`lax.scan`. (b) rlx PPO: all seeds in one vmapped program, env steps/s over training "
        "chunks (compile and evaluation excluded). Peer: Brax's own PPO "
        "(`brax.training.agents.ppo.train`) with the same batch shape, epochs, minibatches and "
        "coefficients but each side's defaults elsewhere (Brax: swish, tanh-normal, time-outs "
        "masked; rlx: tanh, clipped Gaussian, annealed learning rate, time-outs bootstrapped), "
        "one seed per process, steady-state epochs only; identical settings: `matched.md`. "
        "Compile: rlx's init + chunk + evaluation programs; Brax's training compile only. "
        "Final return: deterministic policy, mean ± std over seeds.",
        "",
        "| env | runs | env steps / run | (a) raw env steps/s | (b) train env steps/s | b/a "
        "| b / Brax PPO | compile s | final return | untrained return |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in report["cases"].items():
        peer_rate = res.get("peer", {}).get("env_steps_per_s", math.nan)
        for row in res["ours"]:
            raw = res["raw"][str(row["seeds"])]["env_steps_per_s"]
            lines.append(
                f"| {name} | rlx PPO, {row['seeds']} seed(s) | {fmt_number(res['total_steps'])} "
                f"| {fmt_number(raw)} | {fmt_number(row['env_steps_per_s'])} "
                f"| {fmt_number(row['env_steps_per_s'] / raw, 2)} "
                f"| {fmt_number(row['env_steps_per_s'] / peer_rate, 2)}x "
                f"| {fmt_number(row['compile_s'], 1)} "
                f"| {fmt_number(row['final_return_mean'], 1)} ± {fmt_number(row['final_return_std'], 1)} "
                f"| {fmt_number(row['untrained_return_mean'], 1)} |"
            )
        if "peer" in res:
            p = res["peer"]
            raw1 = res["raw"]["1"]["env_steps_per_s"]
            lines.append(
                f"| {name} | Brax PPO, {p['seeds']} seed(s), sequential | {fmt_number(p['env_steps'])} "
                f"| {fmt_number(raw1)} | {fmt_number(p['env_steps_per_s'])} "
                f"| {fmt_number(p['env_steps_per_s'] / raw1, 2)} | 1.00x | {fmt_number(p['compile_s'], 1)} "
                f"| {fmt_number(p['final_return_mean'], 1)} ± {fmt_number(p['final_return_std'], 1)} | |"
            )
    peers = {n: r["peer"] for n, r in report["cases"].items() if "peer" in r}
    if peers:
        pv = next(iter(peers.values()))["versions"] or {}
        lines += ["", f"Peer stack: {', '.join(f'{k} {v}' for k, v in pv.items())}."]
    lines.append("")
    return "\n".join(lines)


def main(
    out: Path,
    names: list[str] | None = None,
    seed_counts: Sequence[int] = (1, 8, 32),
    quick: bool = False,
    with_peer: bool = True,
) -> Path:
    """Runs the cases `names` (default: all) for each of `seed_counts`, with Brax's PPO unless
    not `with_peer`; writes bench.json and README.md (the table, whose path it returns) to out."""
    names = list(names) if names else list(CASES)
    for name in names:
        if name not in CASES:
            from rlx.errors import unknown

            raise unknown("bench environment", name, CASES)
    out = Path(out)
    report: dict[str, Any] = {
        "command": "rlx bench " + ("--quick" if quick else ""),
        "cases": {},
    }
    for name in names:
        case = CASES[name]
        total = QUICK_SCALE[name] if quick else case["ppo"]["total_steps"]
        p = case["ppo"]
        res: dict[str, Any] = {
            "total_steps": total,
            "settings": {k: v for k, v in p.items() if k != "total_steps"},
        }
        res["raw"] = {
            str(n): raw_env_rate(name, case["backend"], p["num_envs"] * n, p["episode_length"], 100)
            for n in seed_counts
        }
        res["ours"] = []
        for n in seed_counts:
            print(f"[bench] {name}: rlx PPO, {n} seed(s), {total:,} steps each", flush=True)
            res["ours"].append(ours(name, case, n, total))
        if with_peer:
            print(f"[bench] {name}: Brax PPO peer, {case['peer_seeds']} seed(s)", flush=True)
            res["peer"] = peer(name, case, total, case["peer_seeds"])
        report["cases"][name] = res
    report["provenance"] = provenance()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=1, default=float))
    (out / "README.md").write_text(table(report))
    return out / "README.md"
