"""Kernel time of a compiled XLA program by kind, from a JAX profiler trace.

`kernel_times` runs a compiled program a few times under `jax.profiler.trace`, reads the
Perfetto trace the profiler writes, and sums the durations of the events named after the
program's own HLO instructions. `instruction_kinds` sorts those instructions from the
compiled module's text: matrix products (a ``dot`` or ``convolution``, alone or inside a
fusion), control flow (``while``, ``conditional``, ``call``: their events span the kernels
inside them, so they are left out) and every other kernel (elementwise fusions, reductions,
copies, gathers). Kernel time is summed over the threads that ran kernels, so it can exceed
the wall-clock time when kernels run concurrently.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

import jax

MATMUL_OPS = frozenset({"dot", "convolution"})
CONTROL_OPS = frozenset({"while", "conditional", "call"})

_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%([\w.\-]+)\s*\(.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*(.*)$")
_OPCODE = re.compile(r"(?:^|\s)([a-z][a-z0-9\-]*)\(")
_CALLS = re.compile(r"(?:calls|to_apply|body|condition)=%([\w.\-]+)")


class KernelTimes(NamedTuple):
    """Milliseconds of kernel time per call of a program, by kind, and the wall-clock time."""

    matmul_ms: float
    other_ms: float
    kernels_per_call: float
    wall_ms: float


def instruction_kinds(hlo_text: str) -> dict[str, str]:
    """HLO instruction name -> "matmul", "control" or "other", for every instruction of a
    compiled module's text (`Compiled.as_text()`)."""
    ops: dict[str, tuple[str, list[str]]] = {}
    members: dict[str, list[str]] = {}
    current = None
    for line in hlo_text.splitlines():
        if m := _COMPUTATION.match(line):
            current = m.group(1)
            members[current] = []
        elif (m := _INSTRUCTION.match(line)) and current is not None:
            opcode = _OPCODE.search(m.group(2))
            ops[m.group(1)] = (opcode.group(1) if opcode else "", _CALLS.findall(m.group(2)))
            members[current].append(m.group(1))

    def has_matmul(name: str, seen: frozenset = frozenset()) -> bool:
        opcode, called = ops[name]
        return opcode in MATMUL_OPS or any(
            has_matmul(inner, seen | {c})
            for c in called if c in members and c not in seen for inner in members[c]
        )  # fmt: skip

    return {
        name: "control" if opcode in CONTROL_OPS else "matmul" if has_matmul(name) else "other"
        for name, (opcode, _) in ops.items()
    }


def sum_by_kind(events: Iterable[dict[str, Any]], kinds: dict[str, str]) -> dict[str, Any]:
    """Summed microseconds and counts of complete trace events ("ph": "X") per instruction
    kind; events not named after an instruction (runtime, Python) are ignored."""
    total = {"matmul": 0.0, "other": 0.0}
    count = 0
    for e in events:
        kind = kinds.get(e.get("name", "")) if e.get("ph") == "X" else None
        if kind in total:
            total[kind] += float(e["dur"])
            count += 1
    return {**total, "count": count}


def _trace_events(directory: str) -> list[dict[str, Any]]:
    (path,) = glob.glob(os.path.join(directory, "**", "perfetto_trace.json.gz"), recursive=True)
    with gzip.open(path) as f:
        data = json.load(f)
    return data["traceEvents"] if isinstance(data, dict) else data


def kernel_times(compiled: Any, *args: Any, calls: int = 5) -> KernelTimes:
    """Kernel time per call of `compiled(*args)` by kind, over `calls` traced calls after a
    warm-up call (the profiler's own overhead is inside the wall-clock figure)."""
    kinds = instruction_kinds(compiled.as_text())
    jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as directory:
        with jax.profiler.trace(directory, create_perfetto_trace=True):
            t0 = time.perf_counter()
            for _ in range(calls):
                jax.block_until_ready(compiled(*args))
            wall = time.perf_counter() - t0
        sums = sum_by_kind(_trace_events(directory), kinds)
    return KernelTimes(
        matmul_ms=sums["matmul"] / 1e3 / calls,
        other_ms=sums["other"] / 1e3 / calls,
        kernels_per_call=sums["count"] / calls,
        wall_ms=1e3 * wall / calls,
    )
