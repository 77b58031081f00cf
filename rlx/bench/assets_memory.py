"""`rlx bench --assets`: memory of one dataset asset shared by 1 and by 16 runs of a batch.

A dataset of ``transitions`` rows (default 10M, pendulum swing-up demonstrations of the
baseline controller with noise 0.2) is collected and written once. Each seed count then runs in
its own process (so peak memory is that run's alone): behaviour cloning (`rlx.algos.bc`) over the
dataset for a few updates, all seeds in one program. Reported per seed count: the dataset's
size, the chunk program's compiled memory (arguments, temporaries), the process's peak resident
memory and its growth over the process before the dataset was loaded. On a CPU the device
memory is the host's, so peak resident memory is the device-memory figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rlx.provenance import describe_hardware, provenance

SETTINGS = {"total_steps": 2_000, "grad_steps_per_update": 500, "batch_size": 256,
            "hidden": (256, 256)}  # fmt: skip
CHILD = """
import json, resource, sys, jax
from rlx import runner
from rlx.runner import execute
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
seeds, path, settings = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
rp = runner.plan("bc", "pendulum_swingup", seeds=seeds, overrides=settings, num_evals=1,
                 eval_episodes=4, assets={"dataset": path})
batch = execute.Batch.make(rp, jax.devices(), None)
chunk = batch.programs_for(list(range(seeds))).chunk.memory_analysis()
rec = runner.run(rp, progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seeds": seeds, "rss_before_kib": before, "rss_peak_kib": peak,
                  "argument_bytes": chunk.argument_size_in_bytes,
                  "temp_bytes": chunk.temp_size_in_bytes,
                  "gradient_steps_per_s": rec["timing"]["steps_per_s"],
                  "final_return": sum(r["final"]["eval/return"] for r in rec["runs"]) / seeds}))
"""


def _measure(seeds: int, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(seeds), str(path), json.dumps(SETTINGS)],
        capture_output=True, text=True, check=False, env=dict(os.environ),
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"memory probe with {seeds} seeds failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _markdown(report: dict[str, Any]) -> str:
    prov = report["provenance"]
    mib = 1 << 20
    lines = [
        "# Memory of a shared dataset asset: 1 vs 16 seeds",
        "",
        f"- command: `{report['command']}`; hardware: {describe_hardware(prov['hardware'])}",
        f"- git {prov['git']}; jax {prov['versions']['jax']}; {prov['date']}",
        f"- dataset: {report['transitions']:,} transitions ({report['dataset_mib']:.0f} MiB of "
        f"float32 arrays; {report['used_mib']:.0f} MiB read by BC: observations, actions), "
        f"collected in {report['collect_s']:.0f} s",
        f"- per seed count, one process: behaviour cloning, {SETTINGS['total_steps']:,} gradient "
        f"steps of batch {SETTINGS['batch_size']}, 256-256 network, all seeds in one program",
        "",
        "| seeds | chunk arguments MiB | chunk temporaries MiB | peak RSS MiB | RSS growth MiB "
        "| gradient steps/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['seeds']} | {row['argument_bytes'] / mib:.1f} | {row['temp_bytes'] / mib:.1f} "
            f"| {row['rss_peak_kib'] / 1024:.0f} | "
            f"{(row['rss_peak_kib'] - row['rss_before_kib']) / 1024:.0f} "
            f"| {row['gradient_steps_per_s']:,.0f} |"
        )
    one, many = report["rows"][0], report["rows"][-1]
    growth = (many["rss_peak_kib"] - one["rss_peak_kib"]) / 1024
    copies = (many["seeds"] - one["seeds"]) * report["used_mib"]
    verdict = "held once" if growth < copies / 2 else "NOT held once: memory grows with the seeds"
    lines += [
        "",
        f"From {one['seeds']} to {many['seeds']} seeds the program's arguments grow by "
        f"{(many['argument_bytes'] - one['argument_bytes']) / mib:.1f} MiB (the per-run states) and "
        f"the peak resident memory by {growth:.0f} MiB; a copy of the dataset per extra seed "
        f"would add {copies:,.0f} MiB. The dataset is {verdict}.",
        "",
    ]
    return "\n".join(lines)


def main(out: Path, transitions: int = 10_000_000, seed_counts: tuple[int, ...] = (1, 16)) -> Path:
    """Collects the dataset, measures every seed count, writes assets.json and assets.md."""
    from rlx.data import datasets

    started = provenance()
    episodes = max(1, transitions // 200)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        data = datasets.collect_baseline_dataset("pendulum_swingup", episodes, 200, 0.2, 0)
        path = datasets.save_npz(Path(tmp) / "pendulum_demos.npz", data)
        collect_s = time.perf_counter() - t0
        report = {
            "command": f"rlx bench --assets --transitions {transitions}",
            "provenance": started,
            "transitions": len(data["actions"]),
            "dataset_mib": sum(x.nbytes for x in data.values()) / (1 << 20),
            "used_mib": (data["observations"].nbytes + data["actions"].nbytes) / (1 << 20),
            "collect_s": collect_s,
            "settings": SETTINGS,
        }
        del data
        report["rows"] = [_measure(n, path) for n in seed_counts]
    out.mkdir(parents=True, exist_ok=True)
    (out / "assets.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "assets.md").write_text(_markdown(report))
    return out / "assets.md"
