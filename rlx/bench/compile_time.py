"""`rlx bench --compile`: cold and warm compile seconds of each algorithm's programs.

For each case it builds the three programs a run compiles (init, one chunk of updates,
evaluation) exactly as `rlx.runner.programs.build` does, twice in one process with a fresh
persistent compilation cache (compiles of >= 1 s are kept, as `rlx` commands keep them):

- cold: nothing cached;
- warm: after ``jax.clear_caches()``, so jax traces and lowers again but loads XLA's
  executables from the persistent cache (what a second ``rlx train`` of the same program pays).

Each build's time is split by ``jax.monitoring`` spans into tracing, lowering to MLIR and the
XLA compile (or cache load). Writes ``compile.json`` and ``compile.md``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from rlx import runner
from rlx.bench.matched import MATCHED, rlx_overrides
from rlx.runner import programs as progs
from rlx.runner.execute import Batch

EVENTS = {
    "trace": "/jax/core/compile/jaxpr_trace_duration",
    "lower": "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "xla": "/jax/core/compile/backend_compile_duration",
}

# (label, algo, env, backend, overrides); one seed, the algorithms' default settings unless given.
CASES: list[tuple[str, str, str, str | None, dict[str, Any]]] = [
    ("ppo, pendulum", "ppo", "pendulum_swingup", None, {"total_steps": 30_000}),
    ("td3, pendulum", "td3", "pendulum_swingup", None, {"total_steps": 10_240}),
    ("sac, pendulum", "sac", "pendulum_swingup", None, {"total_steps": 10_240}),
    ("agency_td3, pendulum", "agency_td3", "pendulum_swingup", None,
     {"total_steps": 10_240}),
    ("factorized_pg, target_matching_m6", "factorized_pg", "target_matching_m6", None,
     {"total_steps": 30_000}),
    ("ppo, ant (mjx), matched shape", "ppo", "brax:ant", "mjx",
     rlx_overrides(MATCHED["brax:ant"]["settings"], 6_400)),
]  # fmt: skip


class _Recorder:
    """Collects (event, start, end) of jax's compile-path spans."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        jax.monitoring.register_event_time_span_listener(self._on)

    def _on(self, event: str, start: float, end: float, **_) -> None:
        self.spans.append((event, start, end))

    def split(self, t0: float, t1: float) -> dict[str, float]:
        """Seconds of each event kind whose span lies in [t0, t1] (outermost spans only)."""
        return {
            kind: sum(e - s for ev, s, e in self.spans if ev == name and s >= t0 and e <= t1)
            for kind, name in EVENTS.items()
        }


def build_once(rp: runner.RunPlan, rec: _Recorder) -> dict[str, dict[str, float]]:
    """Builds init, chunk and eval like `programs.build`; seconds per program and kind."""
    batch = Batch.make(rp, jax.devices(), None)
    keys, configs = batch.inputs([0])
    init_one, chunk_one, eval_one = progs.step_functions(rp, batch.env)
    out: dict[str, dict[str, float]] = {}

    def timed(label: str, fn, *args):
        t0 = time.time()
        compiled = jax.jit(fn).lower(*args).compile()
        t1 = time.time()
        out[label] = {"total": t1 - t0, **rec.split(t0, t1)}
        return compiled

    init_j = progs.over_runs(init_one, (0, 0, None), 1)
    timed("init", init_j, keys, configs, batch.assets)
    spec = jax.eval_shape(jax.jit(init_j), keys, configs, batch.assets)
    timed("chunk", progs.over_runs(chunk_one, (0, None), 1), spec, batch.assets)
    index = jax.ShapeDtypeStruct((), jnp.int32)
    timed("eval", progs.over_runs(eval_one, (0, 0, None, None), 1), spec, keys, index,
          batch.assets)  # fmt: skip
    return out


def measure(rec: _Recorder) -> dict[str, Any]:
    """Cold and warm builds of every case."""
    results = {}
    for label, algo, env, backend, overrides in CASES:
        rp = runner.plan(algo, env, seeds=1, overrides=overrides, num_evals=2, eval_episodes=4,
                         env_kwargs={"backend": backend} if backend else {})  # fmt: skip
        print(f"[bench compile] {label}", flush=True)
        cold = build_once(rp, rec)
        jax.clear_caches()
        warm = build_once(rp, rec)
        jax.clear_caches()
        results[label] = {"cold": cold, "warm": warm}
    return results


def table(report: dict) -> str:
    """Markdown table of a compile report."""
    from rlx.provenance import describe_hardware

    prov = report["provenance"]
    v = prov["versions"]
    lines = [
        "# Compile time: cold and warm (persistent cache), per program", "",
        f"- hardware: {describe_hardware(prov['hardware'])}",
        f"- rlx: jax {v['jax']}, brax {v['brax']}, mujoco-mjx {v['mujoco-mjx']}; "
        f"git {prov['git']}; {prov['date']}",
        f"- command: `{report['command']}`", "",
        "Seconds to build one run's programs (1 seed). trace / lower / XLA: jax's "
        "`jax.monitoring` spans (XLA = compile when cold, cache load when warm). Warm: after "
        "`jax.clear_caches()`, as a second `rlx train` of the same program in a new process.",
        "", "| algorithm, env | program | cold s | trace | lower | XLA | warm s | warm XLA |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for label, res in report["cases"].items():
        for prog in ("init", "chunk", "eval"):
            c, w = res["cold"][prog], res["warm"][prog]
            lines.append(
                f"| {label} | {prog} | {c['total']:.1f} | {c['trace']:.1f} | {c['lower']:.1f} "
                f"| {c['xla']:.1f} | {w['total']:.1f} | {w['xla']:.1f} |"
            )
        cold = sum(res["cold"][p]["total"] for p in ("init", "chunk", "eval"))
        warm = sum(res["warm"][p]["total"] for p in ("init", "chunk", "eval"))
        lines.append(f"| {label} | **all three** | **{cold:.1f}** | | | | **{warm:.1f}** | |")
    lines.append("")
    return "\n".join(lines)


def main(out: Path) -> Path:
    """Measures every case with a fresh persistent cache; writes compile.json and compile.md."""
    from rlx.provenance import provenance

    rec = _Recorder()
    with tempfile.TemporaryDirectory() as cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
        cases = measure(rec)
    report = {"command": "rlx bench --compile", "cases": cases, "provenance": provenance()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "compile.json").write_text(json.dumps(report, indent=1, default=float))
    (out / "compile.md").write_text(table(report))
    return out / "compile.md"
