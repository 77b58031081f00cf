"""The `rlx` command: list, train, sweep, eval, table, plot, gradvar, dataset, bench.

Every user error (bad name, value, budget) is one line on stderr, ``rlx: error: ...``, with exit
code 2, no traceback, and nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rlx.errors import RlxError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"rlx: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _setup_jax(args: argparse.Namespace) -> None:
    """Persistent compilation cache, matmul precision and (optionally) the distributed runtime."""
    import jax

    from rlx.api import configure

    cache = os.environ.get("RLX_COMPILATION_CACHE", str(Path.home() / ".cache" / "rlx" / "jax"))
    configure(compilation_cache=cache or None, matmul_precision=getattr(args, "precision", None))
    if getattr(args, "distributed", False):
        # Reads the coordinator address, process count and id from the cluster environment
        # (SLURM, Open MPI, Kubernetes, or JAX_COORDINATOR_ADDRESS/... set by hand).
        jax.distributed.initialize()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _env_kwargs(pairs: list[str], backend: str | None) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise RlxError(f"bad --env-set {pair!r}: expected name=value.")
        try:
            out[name] = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            out[name] = text
    if backend is not None:
        out["backend"] = backend
    return out


def _overrides(args: argparse.Namespace, spec) -> dict[str, str]:
    """--set pairs, with --total-steps as the total_steps override (giving both is refused)."""
    overrides = spec.parse_pairs(args.set, "--set")
    if args.total_steps is not None:
        if "total_steps" in overrides:
            raise RlxError("total_steps is given twice (--total-steps and --set); keep one.")
        overrides["total_steps"] = str(args.total_steps)
    return overrides


def cmd_list(_: argparse.Namespace) -> int:
    """Prints every environment and algorithm with a one-line description."""
    from rlx import algorithm, envs

    print("Environments:")
    for name, desc in envs.names().items():
        print(f"  {name:28s} {desc}")
    print("Algorithms:")
    for name, desc in algorithm.names().items():
        print(f"  {name:28s} {desc}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Trains seeds x grid runs and writes the run record to --out."""
    from rlx import envs, record, runner, spec

    envs.check_name(args.env)
    if args.backend is not None and not envs.is_brax(args.env):
        raise RlxError(f"--backend applies to brax:* environments only, not {args.env!r}.")
    out = Path(args.out)
    record.check_out_dir(out, args.overwrite)
    rp = runner.plan(
        args.algo,
        args.env,
        seeds=args.seeds,
        overrides=_overrides(args, spec),
        grid=spec.parse_grid_pairs(args.grid),
        num_evals=args.num_evals,
        eval_episodes=args.eval_episodes,
        env_kwargs=_env_kwargs(args.env_set, args.backend),
        assets=spec.parse_pairs(args.asset, "--asset"),
    )
    on_slice_end = _policy_exporter(args, rp, out)
    _setup_jax(args)
    rec = runner.run(
        rp, runs_per_slice=args.runs_per_slice, progress=not args.quiet, on_slice_end=on_slice_end
    )
    record.write_run(out, rec, overwrite=args.overwrite)
    print(record.console_summary(rec, out))
    return 0


def _policy_exporter(args: argparse.Namespace, rp, out: Path):
    """``on_slice_end`` exporting ``--export DIR``'s runs (all, or ``--export-run i``) to
    ``DIR/run-<i>/`` as each slice ends; None without --export. Bad values are refused here,
    before anything runs."""
    from rlx import policy, record
    from rlx.provenance import provenance

    if args.export is None:
        if args.export_run is not None:
            raise RlxError("--export-run needs --export DIR.")
        return None
    export = Path(args.export)
    n = len(rp.runs)
    if args.export_run is not None and not 0 <= args.export_run < n:
        raise RlxError(
            f"--export-run {args.export_run} is out of range: this batch has runs 0..{n - 1}."
        )
    inside = export.resolve()
    if inside == out.resolve() or out.resolve() in inside.parents:
        raise RlxError(
            "--export must not be inside --out (the run directory is replaced at the end)."
        )
    record.check_out_dir(export, args.overwrite)
    started = provenance()

    def wanted(i: int) -> bool:
        return args.export_run is None or i == args.export_run

    def export_slice(ids: list[int], state) -> None:
        for path in policy.export_runs(
            rp, ids, state, started, lambda i: export / f"run-{i}", wanted
        ):
            print(f"exported policy: {path}")

    return export_slice


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluates a policy artifact on its env (or another with the same sizes); writes JSON."""
    import json

    from rlx import policy

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.overwrite:
        raise RlxError(f"{str(out)!r} exists; pass --overwrite to replace it.")
    _setup_jax(args)
    artifact = policy.load_artifact(args.dir, env=args.env)
    seed, point = _eval_key(args, artifact.meta)
    metrics = policy.evaluate_artifact(artifact, args.episodes, seed, point)
    print(_eval_table(artifact, metrics, args.episodes, seed, point))
    if out is not None:
        result = {"kind": "rlx.eval", "artifact": str(Path(args.dir)), "algorithm":
                  artifact.meta["algorithm"], "trained_on": artifact.meta["env"],
                  "env": artifact.env_name, "episodes": args.episodes, "seed": seed,
                  "point": point, "metrics": metrics}  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(out)
        print(f"wrote {out}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Renders a rollout of a policy artifact: HTML (Brax's viewer) or an animated GIF."""
    from rlx import envs, policy, render

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise RlxError(f"{str(out)!r} exists; pass --overwrite to replace it.")
    _setup_jax(args)
    artifact = policy.load_artifact(args.dir, env=args.env)
    render.check_output(artifact.env, artifact.env_name, out)  # before any rollout
    steps = args.steps or envs.episode_length(artifact.env)
    path = render.render_env(artifact.env, artifact.env_name, artifact.act, out, steps, args.seed)
    print(f"wrote {path} ({steps} steps of {artifact.meta['algorithm']} on {artifact.env_name})")
    return 0


def _eval_key(args: argparse.Namespace, meta: dict) -> tuple[int, int]:
    """(seed, evaluation point) of `rlx eval`'s key: --seed (default: the artifact's run seed)
    and the run's final evaluation point (0 for an artifact that records no run)."""
    run = meta.get("run")
    if args.seed is None and run is None:
        raise RlxError(f"{args.dir!r} records no run (no seed to default to); give --seed.")
    seed = args.seed if args.seed is not None else int(run["seed"])
    return seed, int(run["eval_point"]) if run is not None else 0


def _eval_table(artifact, metrics: dict[str, float], episodes: int, seed: int, point: int) -> str:
    """A short Markdown table: return mean ± std and the env's outcomes."""
    from rlx.envs import outcome_rules

    meta = artifact.meta
    lines = [
        f"{meta['algorithm']} policy trained on {meta['env']}, evaluated on {artifact.env_name}: "
        f"{episodes} episodes, key of seed {seed} at point {point}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| return | {metrics['eval/return']:.2f} ± {metrics['eval/return_std']:.2f} |",
    ]
    for name, rule in outcome_rules(artifact.env).items():
        value = metrics[f"eval/{name}"]
        text = f"{100 * value:.1f}%" if rule.percent else f"{value:.4g}"
        lines.append(f"| {rule.label or name} | {text} |")
    return "\n".join(lines)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Runs (or resumes) a sweep file, then writes its tables and plots."""
    from rlx import sweep as sweep_mod
    from rlx import table

    sw = sweep_mod.load(args.file, quick=args.quick)
    out = Path(args.out) if args.out else Path("results") / sw.name
    _setup_jax(args)
    sweep_mod.run_sweep(
        sw, out, new=args.new, progress=not args.quiet, runs_per_slice=args.runs_per_slice,
        tensorboard=args.tensorboard, accept_revision_change=args.accept_revision_change,
        keep_policies=args.keep_policies,
    )  # fmt: skip
    paths = table.write_tables(out) + table.write_plots(out)
    print((out / "table.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    """Writes table.md/.csv/.tex of a sweep results directory."""
    from rlx import table

    paths = table.write_tables(Path(args.dir))
    print(paths[0].read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Writes the learning-curve and performance-profile PNGs of a sweep results directory."""
    from rlx import table

    paths = table.write_plots(Path(args.dir))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_gradvar(args: argparse.Namespace) -> int:
    """Runs the [variance] section of a sweep file: policy-gradient variance per baseline."""
    from rlx import gradvar

    spec = gradvar.load(args.file, quick=args.quick)
    out = Path(args.out) if args.out else Path("results") / spec["name"] / "variance"
    _setup_jax(args)
    gradvar.run(spec, out)
    print((out / "variance.md").read_text())
    print(f"wrote {out}/variance.json, variance.md, variance_vs_dimension.png")
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    """Collects a dataset of the env's baseline controller and writes it as an .npz asset."""
    from rlx import datasets
    from rlx.assets import content_hash

    out = Path(args.out)
    if out.suffix != ".npz":
        raise RlxError(f"--out must name an .npz file, got {str(out)!r}.")
    if out.exists() and not args.overwrite:
        raise RlxError(f"{str(out)!r} exists; pass --overwrite to replace it.")
    _setup_jax(args)
    data = datasets.collect_baseline_dataset(
        args.env, args.episodes, args.episode_length, args.noise, args.seed
    )
    datasets.save_npz(out, data)
    rows = len(data["actions"])
    print(f"wrote {out}: {rows:,} transitions, sha256 {content_hash(out)[:16]}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Runs the throughput benchmark and writes results/bench."""
    from rlx.bench import throughput

    os.environ["RLX_COMPILATION_CACHE"] = ""  # compile seconds are measured: no persistent cache
    _setup_jax(args)
    if args.assets:
        from rlx.bench import assets_memory

        path = assets_memory.main(Path(args.out), transitions=args.transitions)
        print(path.read_text())
        return 0
    throughput.main(args)
    return 0


def _add_train(sub) -> argparse.ArgumentParser:
    train = sub.add_parser("train", help="train seeds x grid runs in one compiled program")
    train.add_argument("--algo", required=True, help="algorithm name (see rlx list)")
    train.add_argument("--env", required=True, help="environment name (see rlx list)")
    train.add_argument("--seeds", type=_positive_int, default=8, help="number of seeds 0..N-1")
    train.add_argument(
        "--total-steps",
        type=_positive_int,
        default=None,
        help="budget per run, in the algorithm's unit (env or gradient steps)",
    )
    train.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a config field (repeatable)")  # fmt: skip
    train.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                       help="hyperparameter grid, vmapped in the same program (repeatable)")  # fmt: skip
    train.add_argument("--env-set", action="append", default=[], metavar="NAME=VALUE",
                       help="environment constructor keyword (repeatable)")  # fmt: skip
    train.add_argument("--backend", default=None, help="physics backend for brax:* envs")
    train.add_argument("--num-evals", type=_positive_int, default=10, help="evaluation points")
    train.add_argument(
        "--eval-episodes", type=_positive_int, default=16, help="episodes per evaluation"
    )
    train.add_argument("--asset", action="append", default=[], metavar="NAME=PATH",
                       help="a read-only input the algorithm needs, e.g. dataset=demos.npz")  # fmt: skip
    train.add_argument("--runs-per-slice", type=_positive_int, default=None,
                       help="run the batch in slices of this many runs (device memory)")  # fmt: skip
    train.add_argument("--out", required=True, help="run directory to write")
    train.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_export_options(train)
    train.set_defaults(func=cmd_train)
    return train


def _add_export_options(train: argparse.ArgumentParser) -> None:
    """``rlx train --export DIR [--export-run I]``."""
    train.add_argument("--export", default=None, metavar="DIR",
                       help="write each run's final policy to DIR/run-<i>/ (rlx eval, rlx.load_policy)")  # fmt: skip
    train.add_argument("--export-run", type=int, default=None, metavar="I",
                       help="with --export: only run I")  # fmt: skip


def _add_eval(sub) -> argparse.ArgumentParser:
    ev = sub.add_parser("eval", help="evaluate a policy artifact (rlx train --export, rlx sweep)")
    ev.add_argument("dir", help="policy artifact directory, e.g. runs/exported/run-0")
    ev.add_argument("--env", default=None,
                    help="environment (default: the artifact's; others need equal sizes)")  # fmt: skip
    ev.add_argument("--episodes", type=_positive_int, default=16, help="deterministic episodes")
    ev.add_argument("--seed", type=int, default=None,
                    help="evaluation key seed (default: the run's own seed, which with "
                         "--episodes = its eval_episodes reproduces its last evaluation)")  # fmt: skip
    ev.add_argument("--out", default=None, help="JSON file to write")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ev.add_argument("--precision", choices=("default", "high", "highest"), default="default",
                    help="jax_default_matmul_precision")  # fmt: skip
    ev.set_defaults(func=cmd_eval)
    return ev


def _add_render(sub) -> None:
    ren = sub.add_parser("render", help="render a rollout of a policy artifact (.html or .gif)")
    ren.add_argument("dir", help="policy artifact directory, e.g. runs/exported/run-0")
    ren.add_argument("--out", required=True,
                     help="file to write: .html for brax:* envs, .gif for rlx's 2-D envs")  # fmt: skip
    ren.add_argument("--env", default=None, help="environment (default: the artifact's)")
    ren.add_argument("--steps", type=_positive_int, default=None,
                     help="steps to roll out (default: the env's episode length)")  # fmt: skip
    ren.add_argument("--seed", type=int, default=0, help="seed of the initial state")
    ren.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ren.set_defaults(func=cmd_render)


def _add_sweep(sub) -> argparse.ArgumentParser:
    sweep = sub.add_parser("sweep", help="run a sweep file (resumable), then its tables and plots")
    sweep.add_argument("file", help="sweep file (TOML), e.g. sweeps/quickstart.toml")
    sweep.add_argument("--quick", action="store_true", help="the file's CPU-scale budget")
    sweep.add_argument("--out", default=None, help="results directory (default results/<name>)")
    sweep.add_argument("--new", action="store_true",
                       help="move a results directory of another configuration aside")  # fmt: skip
    sweep.add_argument("--runs-per-slice", type=_positive_int, default=None,
                       help="run each cell's batch in slices of this many runs")  # fmt: skip
    sweep.add_argument("--accept-revision-change", action="store_true",
                       help="resume or keep cells made by other code (the table says so)")  # fmt: skip
    sweep.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events")
    sweep.add_argument("--keep-policies", action=argparse.BooleanOptionalAction, default=True,
                       help="export every run's final policy to <out>/policies/ (default: on)")  # fmt: skip
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=cmd_sweep)
    return sweep


def _add_reports(sub) -> None:
    for name, func, text in (("table", cmd_table, "Markdown/CSV/LaTeX tables"),
                             ("plot", cmd_plot, "learning curves and performance profile PNGs")):  # fmt: skip
        p = sub.add_parser(name, help=f"{text} of a sweep results directory")
        p.add_argument("dir", help="results/<experiment>")
        p.set_defaults(func=func)


def _add_gradvar(sub) -> argparse.ArgumentParser:
    grad = sub.add_parser("gradvar", help="policy-gradient variance study ([variance] of a file)")
    grad.add_argument("file", help="sweep file with a [variance] section")
    grad.add_argument("--quick", action="store_true", help="the section's CPU-scale settings")
    grad.add_argument("--out", default=None, help="directory (default results/<name>/variance)")
    grad.set_defaults(func=cmd_gradvar)
    return grad


def _add_dataset(sub) -> None:
    data = sub.add_parser("dataset", help="collect a dataset asset (.npz) with an env's controller")
    data.add_argument("action", choices=("collect",), help="what to do")
    data.add_argument("--env", required=True, help="environment with a baseline controller")
    data.add_argument("--episodes", type=_positive_int, required=True, help="episodes to collect")
    data.add_argument("--episode-length", type=int, default=0,
                      help="steps per episode (0: the env's default)")  # fmt: skip
    data.add_argument("--noise", type=float, default=0.0, help="std of Gaussian action noise")
    data.add_argument("--seed", type=int, default=0, help="PRNG seed")
    data.add_argument("--out", required=True, help="the .npz file to write")
    data.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    data.set_defaults(func=cmd_dataset)


def _add_bench(sub) -> argparse.ArgumentParser:
    bench = sub.add_parser("bench", help="throughput benchmark: raw env vs PPO vs Brax PPO")
    bench.add_argument("--out", default="results/bench", help="directory for the tables")
    bench.add_argument("--quick", action="store_true", help="small budgets (CPU smoke run)")
    bench.add_argument("--no-peer", action="store_true", help="skip the Brax PPO peer rows")
    bench.add_argument("--envs", default=None, help="comma-separated env names to benchmark")
    bench.add_argument("--seeds", default="1,8,32", help="comma-separated seed counts")
    bench.add_argument("--assets", action="store_true",
                       help="instead: memory of one dataset asset shared by 1 and 16 seeds")  # fmt: skip
    bench.add_argument("--transitions", type=_positive_int, default=10_000_000,
                       help="with --assets: dataset size")  # fmt: skip
    bench.set_defaults(func=cmd_bench)
    return bench


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="rlx", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list environments and algorithms").set_defaults(func=cmd_list)
    train, sweep = _add_train(sub), _add_sweep(sub)
    _add_eval(sub)
    _add_render(sub)
    _add_reports(sub)
    grad = _add_gradvar(sub)
    _add_dataset(sub)
    bench = _add_bench(sub)
    for p in (train, sweep, grad, bench):
        p.add_argument("--precision", choices=("default", "high", "highest"), default="default",
                       help="jax_default_matmul_precision (TF32 on GPUs unless 'highest')")  # fmt: skip
        p.add_argument("--distributed", action="store_true",
                       help="call jax.distributed.initialize() (multi-host runs)")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RlxError as err:
        sys.stderr.write(f"rlx: error: {err}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("rlx: interrupted; nothing was written.\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
