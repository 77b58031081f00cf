"""`rlx bench --offline`: gradient steps/s and memory of TRL and GCIQL on the giant point maze's
navigate dataset, for 1 and 8 seeds in one program, at the quick and the paper network sizes.

Each (algorithm, size, seeds) row runs in its own process (so its peak memory is its own):
the giant dataset (500 x 2,001 rows, OGBench's size, built once into the asset cache) and its
distance table are the shared assets; the process plans a run, compiles it (init + chunk +
evaluation, timed), trains a fixed number of gradient steps in one chunk and reports the
training throughput (compile and evaluation excluded), the chunk program's compiled memory
(arguments: the assets once plus the per-run states; temporaries) and its peak resident
memory. On a CPU the device memory is the host's, so peak resident memory is the device-memory
figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rlx.provenance import describe_hardware, provenance

SIZES = {
    "quick": {"batch_size": 256, "actor_hidden": (64, 64), "value_hidden": (64, 64)},
    "paper": {"batch_size": 1024, "actor_hidden": (512, 512, 512),
              "value_hidden": (512, 512, 512)},
}  # fmt: skip
"""The sweep's --quick profile and OGBench's / TRL's published size."""
STEPS = {"quick": 2000, "paper": 40}
"""Gradient steps timed per row (one chunk)."""
CHILD = """
import json, resource, sys, time, jax
from rlx import runner
from rlx.data import recipes
from rlx.runner import execute
algo, seeds, settings = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
assets = {"dataset": str(recipes.cached("pointmaze-giant-navigate")),
          "distances": str(recipes.cached("pointmaze-giant-distances"))}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rp = runner.plan(algo, "pointmaze_giant", seeds=seeds, overrides=settings, num_evals=1,
                 eval_episodes=5, assets=assets)
batch = execute.Batch.make(rp, jax.devices(), None)
t0 = time.perf_counter()
programs = batch.programs_for(list(range(seeds)))
compile_s = time.perf_counter() - t0
chunk = programs.chunk.memory_analysis()
rec = runner.run(rp, progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"algo": algo, "seeds": seeds, "compile_s": compile_s,
                  "rss_before_kib": before, "rss_peak_kib": peak,
                  "argument_bytes": chunk.argument_size_in_bytes,
                  "temp_bytes": chunk.temp_size_in_bytes,
                  "gradient_steps_per_s": rec["timing"]["steps_per_s"] / seeds}))
"""


def _measure(algo: str, size: str, seeds: int) -> dict[str, Any]:
    settings = {**SIZES[size], "total_steps": STEPS[size], "grad_steps_per_update": STEPS[size]}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, algo, str(seeds), json.dumps(settings)],
        capture_output=True, text=True, check=False, env=dict(os.environ),
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"{algo}/{size}/{seeds} seeds failed:\n{out.stderr[-3000:]}")
    return {"size": size, **json.loads(out.stdout.strip().splitlines()[-1])}


def _markdown(report: dict[str, Any]) -> str:
    prov, mib = report["provenance"], 1 << 20
    lines = [
        "# Offline goal-conditioned RL: gradient steps/s and memory (giant point maze)",
        "",
        f"- command: `{report['command']}`; hardware: {describe_hardware(prov['hardware'])}",
        f"- git {prov['git']}; jax {prov['versions']['jax']}; {prov['date']}",
        "- assets: the pointmaze-giant-navigate dataset (500 x 2,001 rows, OGBench's size) and "
        "its distance table, placed once and shared by every seed of a program",
        "- sizes: quick = the sweep's --quick profile (batch 256, 64-64 MLPs); paper = OGBench's "
        "and TRL's published size (batch 1024, 3x512 MLPs); LayerNorm in both",
        f"- timed: {STEPS['quick']:,} (quick) / {STEPS['paper']} (paper) gradient steps in one "
        "chunk, after compiling; one process per row",
        "",
        "| algorithm | size | seeds | gradient steps/s per seed | seed-steps/s | compile s "
        "| chunk arguments MiB | chunk temporaries MiB | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['algo']} | {r['size']} | {r['seeds']} | {r['gradient_steps_per_s']:,.1f} | "
            f"{r['gradient_steps_per_s'] * r['seeds']:,.1f} | {r['compile_s']:.0f} | "
            f"{r['argument_bytes'] / mib:.1f} | {r['temp_bytes'] / mib:.1f} | "
            f"{r['rss_peak_kib'] / 1024:.0f} |"
        )
    lines += ["", *_memory_notes(report["rows"]), ""]
    return "\n".join(lines)


def _memory_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Per (algorithm, size): how the program's arguments and peak memory grow with seeds."""
    notes = []
    for algo in dict.fromkeys(r["algo"] for r in rows):
        for size in SIZES:
            pair = sorted((r for r in rows if r["algo"] == algo and r["size"] == size),
                          key=lambda r: r["seeds"])  # fmt: skip
            if len(pair) < 2:
                continue
            one, many = pair[0], pair[-1]
            grow = (many["argument_bytes"] - one["argument_bytes"]) / (1 << 20)
            rss = (many["rss_peak_kib"] - one["rss_peak_kib"]) / 1024
            notes.append(
                f"- {algo}, {size}: from {one['seeds']} to {many['seeds']} seeds the chunk's "
                f"arguments grow by {grow:.1f} MiB (the {many['seeds'] - one['seeds']} extra "
                f"training states; the assets stay {one['argument_bytes'] / (1 << 20):.1f} MiB "
                f"minus one state) and peak memory by {rss:.0f} MiB; {many['seeds']} seeds in one "
                f"program run {many['gradient_steps_per_s'] * many['seeds'] / one['gradient_steps_per_s']:.1f}x "
                "the seed-steps/s of one."
            )
    return notes


def main(
    out: Path, algos: tuple[str, ...] = ("trl", "gciql"), seeds: tuple[int, ...] = (1, 8)
) -> Path:
    """Measures every row and writes offline_gc.json and offline_gc.md into `out`."""
    report = {"command": "rlx bench --offline", "provenance": provenance(), "rows": []}
    for algo in algos:
        for size in SIZES:
            for n in seeds:
                report["rows"].append(_measure(algo, size, n))
                print(report["rows"][-1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "offline_gc.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "offline_gc.md").write_text(_markdown(report))
    return out / "offline_gc.md"
