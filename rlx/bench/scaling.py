"""`rlx bench --scaling`: how training cost grows with work, and off-policy gradient steps/s.

For each point (an algorithm, an env, a number of seeds and of envs per seed) it compiles the
init and chunk programs exactly as `rlx.runner` does (`over_runs` + ``jit``; no evaluation
program), runs one warm-up chunk and times `TIMED_CHUNKS` more, and records:

- env steps/s over all seeds, and gradient steps/s for off-policy learners;
- the wall-clock of one update relative to the 1-seed point (the GPU goal: 256 seeds in
  <= 1.5x one seed's time);
- the chunk program's memory from XLA's own analysis (arguments + outputs + temporaries):
  the peak the program needs, without the process's other allocations;
- compile seconds of the two programs (no persistent cache).

Tables go to ``scaling.md``, figures to ``scaling.json``, the plot to ``scaling.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax

from rlx import runner
from rlx.bench.matched import MATCHED, rlx_overrides
from rlx.runner import programs as progs
from rlx.runner.execute import Batch

TIMED_CHUNKS = 2

_ANT = MATCHED["brax:ant"]["settings"]
_PENDULUM = MATCHED["pendulum_swingup"]["settings"]

# (env, backend, algo, base overrides, updates per chunk, seed counts, envs per seed at 1 seed)
PPO_POINTS: dict[str, dict[str, Any]] = {
    "pendulum_swingup": dict(backend=None, overrides=rlx_overrides(_PENDULUM, 1), updates=2,
                             seeds=(1, 8, 32, 128), envs=(100, 400, 1600)),
    "brax:ant": dict(backend="mjx", overrides=rlx_overrides(_ANT, 1), updates=2,
                     seeds=(1, 8, 32), envs=(128, 512)),
}  # fmt: skip
# Measured in this order, so that a run cut short by a lent machine's time limit has the
# goal's two ends (1 and 256 seeds) first; tables and plots sort the points.
GPU_POINTS = {"brax:ant": dict(seeds=(1, 256, 8, 32, 128), envs=(128, 2048, 8192))}

# The papers' off-policy setting (one env, one gradient step per env step, 256-256 networks,
# batch 256; two steps per update so TD3's delayed actor update divides it) and the many-env setting rlx's sweeps use (16 envs x 8 steps, 0.25 grad steps/step).
OFFPOLICY: dict[str, dict[str, Any]] = {
    "paper (1 env, UTD 1)": dict(num_envs=1, unroll_length=2, utd_ratio=1.0, batch_size=256,
                                 hidden=(256, 256), learning_starts=256),
    "sweeps (16 envs x 8, UTD 0.25)": dict(num_envs=16, unroll_length=8, utd_ratio=0.25,
                                           batch_size=256, hidden=(256, 256),
                                           learning_starts=256),
}  # fmt: skip
OFFPOLICY_UPDATES = {"paper (1 env, UTD 1)": 250, "sweeps (16 envs x 8, UTD 0.25)": 60}


def measure(
    algo: str, name: str, backend: str | None, overrides: dict, seeds: int, updates: int
) -> dict[str, Any]:
    """Compiles init + chunk for `seeds` runs of `updates` updates per chunk; times chunks."""
    per_update = overrides["num_envs"] * overrides["unroll_length"]  # env steps per update
    total = per_update * updates * (1 + TIMED_CHUNKS)
    rp = runner.plan(
        algo, name, seeds=seeds, overrides={**overrides, "total_steps": total},
        num_evals=1 + TIMED_CHUNKS, env_kwargs={"backend": backend} if backend else {},
    )  # fmt: skip
    batch = Batch.make(rp, jax.devices(), None)
    keys, configs = batch.inputs(list(range(seeds)))
    init_one, chunk_one, _ = progs.step_functions(rp, batch.env)
    t0 = time.perf_counter()
    init_c = jax.jit(progs.over_runs(init_one, (0, 0, None), seeds)).lower(
        keys, configs, batch.assets).compile()  # fmt: skip
    state = init_c(keys, configs, batch.assets)
    chunk_c = jax.jit(progs.over_runs(chunk_one, (0, None), seeds)).lower(
        state, batch.assets).compile()  # fmt: skip
    compile_s = time.perf_counter() - t0
    mem = chunk_c.memory_analysis()
    state, _ = chunk_c(state, batch.assets)
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    for _ in range(TIMED_CHUNKS):
        state, _ = chunk_c(state, batch.assets)
    jax.block_until_ready(state)
    seconds = (time.perf_counter() - t0) / (TIMED_CHUNKS * updates)
    env_steps = seeds * per_update
    grad = getattr(rp.base_config, "utd_ratio", None)
    return {
        "seeds": seeds, "num_envs": rp.base_config.num_envs, "update_s": seconds,
        "env_steps_per_s": env_steps / seconds,
        "grad_steps_per_s": None if grad is None else env_steps * grad / seconds,
        "memory_mb": None if mem is None else sum(
            getattr(mem, f, 0) or 0 for f in
            ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")) / 2**20,
        "compile_s": compile_s,
    }  # fmt: skip


def ppo_points(name: str, gpu: bool) -> Iterator[tuple[str, dict]]:
    """("seeds", point) over seed counts (at the case's envs per seed), then ("envs", point)
    over envs per seed (1 seed), each measured when the iterator reaches it."""
    p = {**PPO_POINTS[name], **(GPU_POINTS.get(name, {}) if gpu else {})}
    base = p["overrides"]
    first = None
    for n in p["seeds"]:
        print(f"[bench scaling] {name}: {n} seed(s) x {base['num_envs']} envs", flush=True)
        point = measure("ppo", name, p["backend"], base, n, p["updates"])
        first = first or point
        yield "seeds", point
    for e in p["envs"]:
        if e == base["num_envs"] and first is not None:
            yield "envs", first
            continue
        print(f"[bench scaling] {name}: 1 seed x {e} envs", flush=True)
        yield "envs", measure("ppo", name, p["backend"], {**base, "num_envs": e}, 1, p["updates"])


def offpolicy_points(seed_counts: tuple[int, ...] = (1, 10)) -> Iterator[tuple[str, dict]]:
    """TD3 and SAC on pendulum: ("algo, setting", point) for each setting and seed count."""
    for algo in ("td3", "sac"):
        for label, overrides in OFFPOLICY.items():
            key = f"{algo}, {label}"
            for n in seed_counts:
                print(f"[bench scaling] {key}: {n} seed(s)", flush=True)
                yield key, measure(algo, "pendulum_swingup", None, overrides, n,
                                   OFFPOLICY_UPDATES[label])  # fmt: skip


def _row(p: dict, base: dict) -> str:
    mem = "n/a" if p["memory_mb"] is None else f"{p['memory_mb']:,.0f}"
    return (
        f"| {p['seeds']} | {p['num_envs']} | {p['seeds'] * p['num_envs']:,} "
        f"| {p['env_steps_per_s']:,.0f} | {p['update_s'] * 1e3:,.1f} "
        f"| {p['update_s'] / base['update_s']:.2f} | {mem} | {p['compile_s']:.1f} |"
    )


def _sorted(points: list[dict]) -> list[dict]:
    """Points by seeds, then envs per seed: the 1-seed point (the base) first."""
    return sorted(points, key=lambda p: (p["seeds"], p["num_envs"]))


def table(report: dict) -> str:
    """Markdown tables of a scaling report."""
    from rlx.provenance import describe_hardware

    prov = report["provenance"]
    v = prov["versions"]
    head = ("| seeds | envs / seed | envs | env steps/s | ms / update | update time vs 1 seed "
            "| chunk memory MB | compile s |\n|---:|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    lines = [
        "# Scaling: PPO cost vs seeds and envs; TD3/SAC gradient steps/s", "",
        f"- hardware: {describe_hardware(prov['hardware'])}",
        f"- rlx: jax {v['jax']}, brax {v['brax']}, mujoco-mjx {v['mujoco-mjx']}; "
        f"git {prov['git']}; {prov['date']}",
        f"- command: `{report['command']}`", "",
        f"One warm-up chunk, then {TIMED_CHUNKS} timed chunks per point; no evaluation. "
        "Memory: XLA's analysis of the chunk program (arguments + outputs + temporaries). "
        "Compile: init + chunk programs, cold. Settings: the matched PPO settings "
        "(`matched.md`).",
    ]  # fmt: skip
    if not report.get("complete", True):
        lines += ["", "**Incomplete**: the run stopped (interrupted or out of time) after the "
                  "last point below; each point was written as soon as it was measured."]  # fmt: skip
    for name, res in report["ppo"].items():
        for axis, title in (("seeds", "seeds"), ("envs", "envs per seed, 1 seed")):
            if not res[axis]:
                continue
            pts = _sorted(res[axis])
            lines += ["", f"## PPO, {name}: {title}", "", head]
            lines += [_row(p, pts[0]) for p in pts]
    if report["offpolicy"]:
        lines += ["", "## TD3 / SAC on pendulum_swingup", "",
                  "| algorithm, setting | seeds | env steps/s | gradient steps/s | ms / update "
                  "| chunk memory MB | compile s |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for key, points in report["offpolicy"].items():
            for p in points:
                mem = "n/a" if p["memory_mb"] is None else f"{p['memory_mb']:,.0f}"
                lines.append(
                    f"| {key} | {p['seeds']} | {p['env_steps_per_s']:,.0f} "
                    f"| {p['grad_steps_per_s']:,.0f} | {p['update_s'] * 1e3:,.2f} | {mem} "
                    f"| {p['compile_s']:.1f} |"
                )
    lines.append("")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Env steps/s (solid) and chunk memory (dashed) vs seeds and vs envs per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["ppo"])
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 3.6 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        for col, (axis, label) in enumerate((("seeds", "seeds (one program)"),
                                             ("envs", "envs per seed (1 seed)"))):  # fmt: skip
            pts = _sorted(report["ppo"][name][axis])
            if not pts:
                continue
            x = [p[axis if axis == "seeds" else "num_envs"] for p in pts]
            ax = axes[row][col]
            ax.plot(x, [p["env_steps_per_s"] for p in pts], "o-", color="C0")
            ax.set(xscale="log", yscale="log", xlabel=label, title=f"PPO, {name}")
            ax.set_ylabel("env steps/s", color="C0")
            mem = [p["memory_mb"] for p in pts]
            if all(m is not None for m in mem):
                twin = ax.twinx()
                twin.plot(x, mem, "s--", color="C1")
                twin.set_yscale("log")
                twin.set_ylabel("chunk memory (MB)", color="C1")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(out: Path, names: list[str], gpu: bool, offpolicy: bool = True) -> Path:
    """Runs every scaling point, rewriting scaling.json, scaling.md and scaling.png after each
    one, so a run stopped early (a time limit on a lent GPU, say) keeps what it measured."""
    report: dict[str, Any] = {
        "command": "rlx bench --scaling" + (" --gpu-scale" if gpu else "")
        + ("" if offpolicy else " --no-offpolicy"),
        "ppo": {}, "offpolicy": {}, "complete": False,
    }  # fmt: skip
    from rlx.provenance import git_state

    git = git_state()  # the code the run starts with (`rlx.provenance.provenance`)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        report["ppo"][name] = {"seeds": [], "envs": []}
        for axis, point in ppo_points(name, gpu):
            report["ppo"][name][axis].append(point)
            _write(out, report, git)
    for key, point in offpolicy_points() if offpolicy else ():
        report["offpolicy"].setdefault(key, []).append(point)
        _write(out, report, git)
    report["complete"] = True
    _write(out, report, git)
    return out / "scaling.md"


def _write(out: Path, report: dict[str, Any], git: dict[str, str | None]) -> None:
    """scaling.json, .md and .png of the report so far."""
    from rlx.provenance import provenance

    report["provenance"] = provenance(git)
    (out / "scaling.json").write_text(json.dumps(report, indent=1, default=float))
    (out / "scaling.md").write_text(table(report))
    plot(report, out / "scaling.png")
