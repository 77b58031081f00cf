"""`rlx bench --learning`: rlx PPO and Brax's own PPO learning ant, side by side.

At the matched shape of `rlx.bench.matched` (128 envs x 5 steps in 32 minibatches, so 20
env steps per gradient step) neither side learns ant within a CPU budget: the evaluation
return swings between about 10 and 600 from one point to the next on both sides for over a
million env steps. This module runs the same settings dict with 8x the envs (1,024 envs x 5
steps, minibatches of 160 env steps), the shape at which Brax's PPO learned in the matched run,
for millions of env steps, and records both sides' evaluation curves:

* rlx PPO, one seed per run, and Brax PPO, one seed per process, `reps` runs each (seeds
  0..reps-1), every run with the same evaluation points (the untrained policy, then
  `EVAL_POINTS` evenly spaced ones) of `eval_episodes` deterministic episodes;
* rates, compile seconds (cold, then warm from the shared persistent cache) and the raw env's
  rate at 1,024 envs on each side's stack (`rlx.bench.matched.raw_rates`: the peer venv pins
  an older jax, which runs the same MJX physics at another rate).

Writes ``learning.json``, ``learning.md`` (rows and the curve table) and ``learning.png`` (IQM
curves with 95% bootstrap bands, `rlx.report.plots.learning_curves`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rlx.bench import matched

ENV = "brax:ant"
ENV_FACTOR = 8
EVAL_POINTS = 10
TOTAL_STEPS = 3_276_800  # 640 updates of 1,024 envs x 5 steps
QUICK_STEPS = 204_800  # 40 updates


def case() -> dict[str, Any]:
    """The matched ant case with `ENV_FACTOR` times the envs and 16 evaluation episodes."""
    base = matched.MATCHED[ENV]
    settings = {**base["settings"], "num_envs": base["settings"]["num_envs"] * ENV_FACTOR}
    return {**base, "settings": settings, "eval_episodes": 16}


def run(reps: int, total_steps: int, peer: bool) -> dict[str, Any]:
    """The rows (`matched.summarise`, each repetition's curve in its ``raw``), each with the
    raw env's rate at the case's envs on its own stack (``raw_rate``, `matched.raw_rates`)."""
    c = case()
    s = c["settings"]
    print(f"[bench learning] rlx, 1 seed x {reps}", flush=True)
    ours = matched.summarise("rlx PPO, 1 seed", 1, [
        matched.rlx_row(ENV, c, [r], total_steps, num_evals=EVAL_POINTS) for r in range(reps)
    ])  # fmt: skip
    rows = [ours]
    if peer:
        print(f"[bench learning] Brax, 1 seed x {reps}", flush=True)
        rows.append(matched.summarise("Brax PPO, 1 seed", 1, [
            matched.brax_row(ENV, c, r, total_steps, 1, num_evals=EVAL_POINTS + 1)
            for r in range(reps)
        ]))  # fmt: skip
    raws = matched.raw_rates(ENV, c["backend"], s["num_envs"], s["episode_length"], peer)
    for row, stack in zip(rows, ("rlx", "peer"), strict=False):
        row["raw_rate"] = raws[stack]
    return {"settings": s, "eval_episodes": c["eval_episodes"], "rows": rows}


def curves(row: dict) -> tuple[list[int], np.ndarray]:
    """(env steps [T], returns [runs, T]) of a row's repetitions, which must share their
    evaluation points."""
    steps = row["raw"][0]["curve_steps"]
    for rep in row["raw"]:
        if rep["curve_steps"] != steps:
            raise ValueError(
                f"{row['row']}: evaluation points differ between repetitions "
                f"({rep['curve_steps']} vs {steps})."
            )
    return steps, np.array([c for rep in row["raw"] for c in rep["curves"]], dtype=float)


def _curve_lines(rows: list[dict]) -> list[str]:
    """The curve table: mean ± std over the runs at each evaluation point, one column a row."""
    from rlx.bench.throughput import fmt_number

    data = [curves(r) for r in rows]
    steps = data[0][0]
    if any(s != steps for s, _ in data):
        raise ValueError(f"evaluation points differ between rows: {[s for s, _ in data]}")
    lines = ["| env steps | " + " | ".join(r["row"] for r in rows) + " |",
             "|---:|" + "---:|" * len(rows)]  # fmt: skip
    for t, step in enumerate(steps):
        cells = [
            f"{fmt_number(y[:, t].mean(), 1)} ± {fmt_number(y[:, t].std(), 1)}" for _, y in data
        ]
        lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
    return lines


def table(report: dict) -> str:
    """The Markdown of a learning report: provenance, the rows, the curve table."""
    from rlx.provenance import describe_hardware

    prov, rows = report["provenance"], report["rows"]
    v = prov["versions"]
    peer = next((r for r in rows if r["row"].startswith("Brax")), None)
    peer_versions = (peer["raw"][0].get("versions") if peer else None) or {}
    peer_line = ", ".join(f"{k} {x}" for k, x in peer_versions.items()) or "not run"
    n_runs = len(rows[0]["raw"])
    lines = [
        "# Learning ant: rlx PPO vs Brax PPO with identical settings, 8x the matched envs",
        "",
        f"- hardware: {describe_hardware(prov['hardware'])}",
        f"- rlx: python {v['python']}, jax {v['jax']}, brax {v['brax']}, mujoco-mjx "
        f"{v['mujoco-mjx']}; git {prov['git']}; {prov['date']}",
        f"- peer: {peer_line}",
        f"- command: `{report['command']}`; {n_runs} runs per row (seeds 0-{n_runs - 1}), "
        f"{report['total_steps']:,} env steps each",
        "",
        "Settings: " + ", ".join(f"{k}={x}" for k, x in report["settings"].items()),
        "",
        f"Returns: {report['eval_episodes']} deterministic episodes per evaluation point, mean "
        "± std over the runs. Rates: env steps/s of training (compile and evaluation excluded). "
        "Compile: jax trace + lower + compile seconds (`jax.monitoring`), cold = first run with "
        "an empty persistent cache, warm = later runs. / raw env: over the rate of the "
        "training-wrapped env under random actions with the same envs on the row's own stack "
        "(median of 3 100-step scans; the same env code, compiled by rlx's jax for rlx and by "
        "the peer venv's jax for Brax).",
        "",
        f"Still different: {matched.DIFFERENCES}",
        "",
        "| row | env steps/s | vs Brax | / raw env | raw env steps/s (own stack) "
        "| compile cold s | compile warm s | untrained return | final return |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [matched.row_line(r, peer) for r in rows]
    lines += ["", "Evaluation return during training (`learning.png`: IQM with 95% bootstrap "
              "bands):", "", *_curve_lines(rows), ""]  # fmt: skip
    return "\n".join(lines)


def plot(report: dict, path: Path) -> Path:
    """`learning.png`: each row's evaluation curve over its runs."""
    from rlx.report.plots import learning_curves

    title = f"{ENV} (mjx), {report['settings']['num_envs']:,} envs, 1 seed per run"
    return learning_curves({title: {r["row"]: curves(r) for r in report["rows"]}}, path)


def main(out: Path, reps: int, quick: bool, peer: bool) -> Path:
    """Runs both sides with a fresh compilation cache; writes learning.json/.md/.png."""
    from rlx.provenance import provenance

    total = QUICK_STEPS if quick else TOTAL_STEPS
    with tempfile.TemporaryDirectory() as cache, matched.fresh_compilation_cache(cache):
        report: dict[str, Any] = run(reps, total, peer)
    report.update(command="rlx bench --learning" + (" --quick" if quick else ""),
                  total_steps=total, provenance=provenance())  # fmt: skip
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning.json").write_text(json.dumps(report, indent=1, default=float))
    (out / "learning.md").write_text(table(report))
    plot(report, out / "learning.png")
    return out / "learning.md"
