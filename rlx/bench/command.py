"""`rlx bench`: its options, and `run`, the one function behind them (callable from Python).

Each benchmark writes its table (Markdown) and JSON figures to an output directory; `run`
returns the table's path. Nothing here imports jax until a benchmark runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from rlx.errors import RlxError, unknown

KINDS = ("throughput", "matched", "learning", "compile", "scaling", "assets", "offline")


def add_parser(sub, positive_int: Callable[[str], int]) -> argparse.ArgumentParser:
    """Adds ``rlx bench`` and its options to the subparsers `sub` (`positive_int`: the CLI's
    argparse type for counts)."""
    bench = sub.add_parser("bench", help="throughput benchmark: raw env vs PPO vs Brax PPO")
    add = bench.add_argument
    add("--out", default="results/bench", help="directory for the tables")
    add("--quick", action="store_true", help="small budgets (CPU smoke run)")
    add("--no-peer", action="store_true", help="skip the Brax PPO peer rows")
    add("--envs", default=None, help="comma-separated env names to benchmark")
    add("--seeds", default=None, help="comma-separated seed counts (default 1,8,32; with --matched 1,8)")  # fmt: skip
    add("--matched", action="store_true",
        help="rlx PPO vs Brax PPO with identical settings (results/bench/matched.md)")  # fmt: skip
    add("--learning", action="store_true",
        help="rlx PPO vs Brax PPO learning ant at 8x the matched envs (learning.md)")  # fmt: skip
    add("--reps", type=positive_int, default=3,
        help="repetitions per row of --matched or --learning (default 3)")  # fmt: skip
    add("--compile", action="store_true",
        help="cold and warm compile seconds per algorithm (compile.md)")  # fmt: skip
    add("--scaling", action="store_true",
        help="PPO cost vs seeds and envs, TD3/SAC gradient steps/s (scaling.md)")  # fmt: skip
    add("--gpu-scale", action="store_true",
        help="with --scaling: accelerator-scale points (ant to 256 seeds)")  # fmt: skip
    add("--no-offpolicy", action="store_true",
        help="with --scaling: PPO points only, without the TD3/SAC gradient-step rates")  # fmt: skip
    add("--assets", action="store_true",
        help="instead: memory of one dataset asset shared by 1 and 16 seeds")  # fmt: skip
    add("--offline", action="store_true",
        help="instead: TRL/GCIQL gradient steps/s and memory, 1 and 8 seeds")  # fmt: skip
    add("--transitions", type=positive_int, default=10_000_000, help="with --assets: dataset size")
    return bench


def options(args: argparse.Namespace) -> dict:
    """`run`'s keywords from parsed ``rlx bench`` options (the first of --offline, --matched,
    --learning, --compile, --scaling, --assets picks the benchmark; none: throughput)."""
    flags = ("offline", "matched", "learning", "compile", "scaling", "assets")
    kind = next((f for f in flags if getattr(args, f)), "throughput")
    return dict(
        kind=kind,
        out=args.out,
        envs=args.envs.split(",") if args.envs else None,
        seeds=[int(s) for s in args.seeds.split(",")] if args.seeds else None,
        quick=args.quick,
        peer=not args.no_peer,
        reps=args.reps,
        gpu_scale=args.gpu_scale,
        offpolicy=not args.no_offpolicy,
        transitions=args.transitions,
    )


def env_names(envs: Sequence[str] | None, known: dict, what: str) -> list[str]:
    """`envs` (default: every env of the `what` bench); RlxError naming an unknown one."""
    names = list(envs) if envs else list(known)
    for name in names:
        if name not in known:
            raise unknown(f"{what} bench environment", name, known)
    return names


def run(
    kind: str = "throughput",
    out: str | Path = "results/bench",
    *,
    envs: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    quick: bool = False,
    peer: bool = True,
    reps: int = 3,
    gpu_scale: bool = False,
    offpolicy: bool = True,
    transitions: int = 10_000_000,
) -> Path:
    """Runs the benchmark `kind` (one of `KINDS`) and returns the path of the table it wrote
    under `out`. `envs` and `seeds` (seed counts) apply to throughput, matched and scaling
    (envs only); `quick` and `peer` to throughput, matched and learning; `reps` to matched and
    learning; `gpu_scale` and `offpolicy` to scaling; `transitions` to assets."""
    out = Path(out)
    if kind == "offline":
        from rlx.bench import offline_gc

        return offline_gc.main(out)
    if kind == "matched":
        from rlx.bench import matched

        names = env_names(envs, matched.MATCHED, "matched")
        return matched.main(out, names, list(seeds or (1, 8)), reps, quick, peer)
    if kind == "learning":
        from rlx.bench import learning

        return learning.main(out, reps, quick, peer)
    if kind == "compile":
        from rlx.bench import compile_time

        return compile_time.main(out)
    if kind == "scaling":
        from rlx.bench import scaling

        return scaling.main(
            out, env_names(envs, scaling.PPO_POINTS, "scaling"), gpu_scale, offpolicy
        )
    if kind == "assets":
        from rlx.bench import assets_memory

        return assets_memory.main(out, transitions=transitions)
    if kind == "throughput":
        from rlx.bench import throughput

        return throughput.main(out, envs, list(seeds or (1, 8, 32)), quick, peer)
    raise RlxError(f"unknown benchmark {kind!r}; choose one of {', '.join(KINDS)}.")
