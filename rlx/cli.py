"""The `rlx` command: list, check-env, train, sweep, eval, finetune, table, plot, horizon,
gradvar, dataset, bench.

Every user error (bad name, value, budget) is one line on stderr, ``rlx: error: ...``, with exit
code 2, no traceback, and nothing written.
"""

from __future__ import annotations

import argparse
import os
import re
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
    """Persistent compilation cache and matmul precision."""
    from rlx.api import configure

    cache = os.environ.get("RLX_COMPILATION_CACHE", str(Path.home() / ".cache" / "rlx" / "jax"))
    configure(compilation_cache=cache or None, matmul_precision=getattr(args, "precision", None))


def _check_distributed_flags(args: argparse.Namespace) -> None:
    """--coordinator / --num-processes / --process-id only with --distributed, and in range."""
    given = [f for f in ("coordinator", "num_processes", "process_id")
             if getattr(args, f, None) is not None]  # fmt: skip
    if given and not getattr(args, "distributed", False):
        flags = ", ".join("--" + f.replace("_", "-") for f in given)
        verb = "apply" if len(given) > 1 else "applies"
        raise RlxError(f"{flags} {verb} to --distributed runs only; add --distributed.")
    n, i = getattr(args, "num_processes", None), getattr(args, "process_id", None)
    if n is not None and i is not None and not 0 <= i < n:
        raise RlxError(f"--process-id must be in 0..{n - 1} for --num-processes {n}, got {i}.")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seeds(text: str) -> int | list[int]:
    """``--seeds``: a count ``N`` (seeds 0..N-1), a range ``A-B`` (A..B, both included) or a
    list ``A,B,C``; the runner's plan refuses negative and repeated seeds."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if match := re.fullmatch(r"(\d+)-(\d+)", text):
        first, last = int(match[1]), int(match[2])
        if first > last:
            raise argparse.ArgumentTypeError(
                f"the range {text} is empty ({first} > {last}); write A-B with A <= B"
            )
        return list(range(first, last + 1))
    if re.fullmatch(r"-?\d+(\s*,\s*-?\d+)+", text):
        return [int(part) for part in text.split(",")]
    raise argparse.ArgumentTypeError(
        f"expected a number of seeds N, a range A-B or a list A,B,C of integers, got {text!r}"
    )


def _env_kwargs(pairs: list[str], backend: str | None) -> dict[str, object]:
    """``--env-set`` pairs (`rlx.spec.parse_env_pairs`) with ``--backend`` added."""
    from rlx import spec

    out = spec.parse_env_pairs(pairs, "--env-set")
    return out if backend is None else {**out, "backend": backend}


def _overrides(args: argparse.Namespace, spec) -> dict[str, str]:
    """--set pairs, with --total-steps as the total_steps override (giving both is refused)."""
    overrides = spec.parse_pairs(args.set, "--set")
    if args.total_steps is not None:
        if "total_steps" in overrides:
            raise RlxError("total_steps is given twice (--total-steps and --set); keep one.")
        overrides["total_steps"] = str(args.total_steps)
    return overrides


def cmd_list(args: argparse.Namespace) -> int:
    """Prints every environment and algorithm with a one-line description (rlx's own, then
    those registered or installed as entry points), or with a name (built-in, registered,
    entry point or ``package.module:ATTR``), every config field of that algorithm."""
    from rlx import algorithm, envs

    if args.name is not None:
        print(describe_algorithm(algorithm.get_algorithm(args.name)))
        return 0
    env_names, algo_names = envs.names(), algorithm.names()
    _print_names("Environments:", {n: d for n, d in env_names.items() if envs.is_builtin(n)})
    print("Unavailable here (MuJoCo Playground tasks rlx cannot build on this install):")
    for task, why in envs.playground.unavailable().items():
        print(f"  {envs.playground.PREFIX + task:28s} {why}")
    _print_names("Environments from outside rlx (registered or installed entry points):",
                 {n: d for n, d in env_names.items() if not envs.is_builtin(n)})  # fmt: skip
    _print_names("Algorithms:", {n: d for n, d in algo_names.items() if n in algorithm.ALGORITHMS})
    _print_names("Algorithms from outside rlx (registered or installed entry points):",
                 {n: d for n, d in algo_names.items() if n not in algorithm.ALGORITHMS})  # fmt: skip
    return 0


def _print_names(title: str, described: dict[str, str]) -> None:
    """`title` and one line per name with its description (nothing when there is none)."""
    if described:
        print(title)
    for name, desc in described.items():
        print(f"  {name:28s} {desc}")


def cmd_check_env(args: argparse.Namespace) -> int:
    """Prints environment NAME's contract report (`rlx.envs.contract`); an error naming the first
    problem when it fails the contract."""
    from rlx.envs import contract

    report = contract.check_env(args.name, key=args.seed, steps=args.steps)
    print(report.text())
    if not report.ok:
        raise contract.contract_error(args.name, report.problems[0])
    return 0


def describe_algorithm(algo) -> str:
    """`rlx.runner.describe.describe_algorithm` (imported on use: it loads jax)."""
    from rlx.runner import describe

    return describe.describe_algorithm(algo)


def _train_plan(args: argparse.Namespace):
    """The validated plan of ``rlx train`` (same checks with --dry-run)."""
    from rlx import envs, runner, spec

    envs.check_name(args.env)
    if args.backend is not None and not envs.is_brax(args.env):
        raise RlxError(f"--backend applies to brax:* environments only, not {args.env!r}.")
    return runner.plan(
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


def _interrupted(partial: Path) -> int:
    """Says how to resume an interrupted run or sweep (nothing is lost); the exit code 130."""
    sys.stderr.write(f"rlx: interrupted; run the same command again to resume from {partial}.\n")
    return 130


def cmd_train(args: argparse.Namespace) -> int:
    """Trains seeds x grid runs into --out (`rlx.runner.session.train_to_dir`); with --dry-run,
    checks everything and prints the plan instead."""
    from rlx.provenance import provenance
    from rlx.runner import describe, session

    rp = _train_plan(args)
    _setup_jax(args)
    started = provenance()  # read once: the resume check and every record and artifact use it
    options = dict(overwrite=args.overwrite, accept_revision_change=args.accept_revision_change,
                   wandb=args.wandb, export=args.export, export_run=args.export_run)  # fmt: skip
    if args.dry_run:
        meta = session.check_train_to_dir(rp, args.out, started, **options)
        resume = None if meta is None else (meta, session.partial_dir(args.out))
        print(describe.dry_run_text(rp, runs_per_slice=args.runs_per_slice, out=args.out,
                                    resume=resume))  # fmt: skip
        return 0
    try:
        session.train_to_dir(rp, args.out, runs_per_slice=args.runs_per_slice,
                             progress=not args.quiet, tensorboard=args.tensorboard,
                             started=started, **options)  # fmt: skip
    except session.Interrupted as stop:
        return _interrupted(stop.partial)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluates a policy artifact on its env (or another with the same sizes); writes JSON."""
    from rlx import files, policy

    if args.out:
        files.check_new(args.out, args.overwrite)  # before jax starts
    _setup_jax(args)
    result = policy.evaluate_policy(args.dir, env=args.env, episodes=args.episodes, seed=args.seed)
    print(result.table())
    if args.out:
        print(f"wrote {result.write_json(args.out, overwrite=True)}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Renders a rollout of a policy artifact: HTML (Brax's viewer) or an animated GIF."""
    from rlx import files
    from rlx.report import render

    files.check_new(args.out, args.overwrite)  # before jax starts
    _setup_jax(args)
    done = render.render_policy(args.dir, args.out, env=args.env, steps=args.steps,
                                seed=args.seed, overwrite=True)  # fmt: skip
    print(f"wrote {done.path} ({done.steps} steps of {done.algorithm} on {done.env})")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Runs (or resumes) a sweep file, then writes its tables and plots."""
    from rlx import distributed
    from rlx import sweep as sweep_mod
    from rlx.report import table
    from rlx.runner import session

    sw = sweep_mod.load(args.file, quick=args.quick)
    shard = sweep_mod.Shard.parse(args.shard) if args.shard else None
    if shard is not None and args.new:
        raise RlxError(
            "--new cannot be combined with --shard (it would move other shards' results)."
        )
    out = Path(args.out) if args.out else Path("results") / sw.name
    session.check_wandb(args.wandb)
    _setup_jax(args)
    if args.dry_run:
        print(sweep_mod.dry_run_text(sw, out, runs_per_slice=args.runs_per_slice, shard=shard,
                                     accept_revision_change=args.accept_revision_change))  # fmt: skip
        return 0
    try:
        sweep_mod.run_sweep(
            sw, out, new=args.new, progress=not args.quiet, runs_per_slice=args.runs_per_slice,
            tensorboard=args.tensorboard, wandb=args.wandb, keep_policies=args.keep_policies,
            accept_revision_change=args.accept_revision_change, shard=shard,
        )  # fmt: skip
    except session.Interrupted as stop:
        return _interrupted(stop.partial)
    if not distributed.is_primary():
        return 0  # --distributed: process 0 writes the tables
    paths = table.write_tables(out) + table.write_plots(out)
    print((out / "table.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    """Writes table.md/.csv/.tex of a sweep results directory."""
    from rlx.report import table

    paths = table.write_tables(Path(args.dir))
    print(paths[0].read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Writes the learning-curve and performance-profile PNGs of a sweep results directory."""
    from rlx.report import table

    paths = table.write_plots(Path(args.dir))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_horizon(args: argparse.Namespace) -> int:
    """Writes horizon.md/.csv/.png (resolved value horizons) of a sweep results directory."""
    from rlx.report import horizon

    paths = horizon.write(Path(args.dir))
    print(paths[0].read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_gradvar(args: argparse.Namespace) -> int:
    """Runs the [variance] section of a sweep file: policy-gradient variance per baseline."""
    from rlx.bench import gradvar

    spec = gradvar.load(args.file, quick=args.quick)
    _setup_jax(args)
    out = gradvar.run(spec, args.out)
    print((out / "variance.md").read_text())
    print(f"wrote {out}/variance.json, variance.md, variance_vs_dimension.png")
    return 0


def cmd_dataset_make(args: argparse.Namespace) -> int:
    """Builds an asset from a named recipe (``rlx dataset make NAME --out PATH``), or lists the
    recipes (``rlx dataset make list``)."""
    from rlx.data import recipes
    from rlx.data.assets import content_hash

    if args.recipe == "list":
        for name, recipe in recipes.registry().items():
            print(f"  {name:32s} {recipe.doc}")
        return 0
    if not args.out:
        raise RlxError("rlx dataset make needs --out PATH.")
    options = recipes.Options(args.seed, args.episodes, args.steps, args.noise)
    recipes.get(args.recipe)  # an unknown name fails before jax starts
    _setup_jax(args)
    out = recipes.make(args.recipe, Path(args.out), options, overwrite=args.overwrite)
    print(f"wrote {out} ({args.recipe}, {options.tag()}), sha256 {content_hash(out)[:16]}")
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    """Collects a dataset of the env's baseline controller and writes it as an .npz asset."""
    from rlx import files
    from rlx.data import datasets
    from rlx.data.assets import content_hash

    out = files.check_new(args.out, args.overwrite)  # before jax starts
    _setup_jax(args)
    data = datasets.write_baseline_dataset(out, args.env, args.episodes, args.episode_length,
                                           args.noise, args.seed, overwrite=True)  # fmt: skip
    rows = len(data["actions"])
    print(f"wrote {out}: {rows:,} transitions, sha256 {content_hash(out)[:16]}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tunes a policy artifact with HABC on an episode file; writes the result as an
    artifact with a JSON summary (`rlx.algos.finetune.external.finetune_artifact`)."""
    from rlx import files, spec

    files.check_new(args.out, args.overwrite)  # before jax starts
    overrides = spec.parse_pairs(args.set, "--set")
    _setup_jax(args)
    from rlx.algos.finetune import external

    summary = external.finetune_artifact(args.episodes, args.policy, args.out, overrides,
                                         updates=args.updates, seed=args.seed,
                                         overwrite=args.overwrite)  # fmt: skip
    last = summary["metrics"][-1]
    print(f"fine-tuned {args.policy} on {summary['num_episodes']} episodes "
          f"({summary['valid_steps']} steps, {100 * summary['success_rate']:.1f}% successful), "
          f"{summary['updates']} HABC updates: loss/bc {last['loss/bc']:.4g}")  # fmt: skip
    print(f"wrote {args.out} ({external.SUMMARY_FILE} inside)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Runs one benchmark (`rlx.bench.command.run`) and prints its table."""
    from rlx.bench import command

    os.environ["RLX_COMPILATION_CACHE"] = ""  # compile seconds are measured: no persistent cache
    _setup_jax(args)
    print(command.run(**command.options(args)).read_text())
    return 0


def _add_list(sub) -> None:
    lst = sub.add_parser("list", help="list environments and algorithms, or one algorithm's config")
    lst.add_argument("name", nargs="?", default=None,
                     help="an algorithm (a name or package.module:ATTR): print every config "
                     "field, its default, kind and doc")  # fmt: skip
    lst.set_defaults(func=cmd_list)


def _add_check_env(sub) -> None:
    check = sub.add_parser("check-env", help="step an environment under jit and vmap and report "
                           "what of the environment contract it provides")  # fmt: skip
    check.add_argument("name", help="environment name (see rlx list) or module:ATTR")
    check.add_argument("--seed", type=int, default=0, help="PRNG seed of the resets and actions")
    check.add_argument("--steps", type=_positive_int, default=8, help="random-action steps")
    check.set_defaults(func=cmd_check_env)


def _add_train(sub) -> argparse.ArgumentParser:
    train = sub.add_parser("train", help="train seeds x grid runs in one compiled program")
    train.add_argument(
        "--algo", required=True, help="algorithm: a name (rlx list) or package.module:ATTR"
    )
    train.add_argument(
        "--env", required=True, help="environment: a name (rlx list) or package.module:ATTR"
    )
    train.add_argument("--seeds", type=_seeds, default=8, metavar="N|A-B|A,B,...",
                       help="seeds 0..N-1, seeds A..B, or a list (default 8)")  # fmt: skip
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
        "--eval-episodes",
        type=_positive_int,
        default=None,
        help="episodes per evaluation (default 16, or a multiple of the env's tasks: 20)",
    )
    train.add_argument("--asset", action="append", default=[], metavar="NAME=PATH",
                       help="a read-only input the algorithm needs, e.g. dataset=demos.npz")  # fmt: skip
    train.add_argument("--runs-per-slice", type=_positive_int, default=None,
                       help="run the batch in slices of this many runs (device memory)")  # fmt: skip
    train.add_argument("--out", required=True, help="run directory to write")
    train.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_export_options(train)
    _add_train_resume_and_logging(train)
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
    ev.add_argument("--episodes", type=_positive_int, default=None,
                    help="deterministic episodes (default 16, or a multiple of the env's tasks)")  # fmt: skip
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


def _add_train_resume_and_logging(train: argparse.ArgumentParser) -> None:
    """``rlx train``'s resume, live-logging and dry-run options."""
    train.add_argument("--accept-revision-change", action="store_true",
                       help="resume a checkpoint made by other code (the record says so)")  # fmt: skip
    train.add_argument("--tensorboard", action="store_true",
                       help="TensorBoard events per seed and mean, in OUT/tensorboard")  # fmt: skip
    train.add_argument("--wandb", default=None, metavar="PROJECT",
                       help="log to this wandb project (WANDB_MODE=offline: to disk)")  # fmt: skip
    train.add_argument("--dry-run", action="store_true",
                       help="print the config, plan, batch shape and memory; write nothing")  # fmt: skip


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
    sweep.add_argument("--tensorboard", action="store_true",
                       help="TensorBoard events of each cell, in <out>/cells/<cell>/tensorboard")  # fmt: skip
    sweep.add_argument("--wandb", default=None, metavar="PROJECT",
                       help="log each cell to this wandb project (WANDB_MODE=offline: to disk)")  # fmt: skip
    sweep.add_argument("--dry-run", action="store_true",
                       help="print each cell's plan, batch shape and memory; write nothing")  # fmt: skip
    sweep.add_argument("--keep-policies", action=argparse.BooleanOptionalAction, default=True,
                       help="export every run's final policy to <out>/policies/ (default: on)")  # fmt: skip
    sweep.add_argument("--shard", default=None, metavar="K/N",
                       help="run only every N-th cell starting at K (a job array sharing --out)")  # fmt: skip
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=cmd_sweep)
    return sweep


def _add_reports(sub) -> None:
    for name, func, text in (("table", cmd_table, "Markdown/CSV/LaTeX tables"),
                             ("plot", cmd_plot, "learning curves and performance profile PNGs"),
                             ("horizon", cmd_horizon, "value-horizon table and plot")):  # fmt: skip
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
    group = sub.add_parser("dataset", help="build dataset assets: collect, or make from a recipe")
    actions = group.add_subparsers(dest="action", required=True, parser_class=_Parser)
    make = actions.add_parser("make", help="build a named asset recipe (rlx dataset make list)")
    make.add_argument("recipe", help="recipe name, e.g. pointmaze-medium-navigate, or 'list'")
    make.add_argument("--out", default=None, help="file or directory to write")
    make.add_argument("--seed", type=int, default=0, help="PRNG seed")
    make.add_argument("--episodes", type=int, default=0, help="episodes (0: the recipe's own)")
    make.add_argument("--steps", type=int, default=0, help="steps per episode (0: the recipe's)")
    make.add_argument(
        "--noise", type=float, default=None, help="action-noise std (recipe's default)"
    )
    make.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    make.set_defaults(func=cmd_dataset_make)
    data = actions.add_parser("collect", help="collect an .npz dataset with an env's controller")
    data.add_argument("--env", required=True, help="environment with a baseline controller")
    data.add_argument("--episodes", type=_positive_int, required=True, help="episodes to collect")
    data.add_argument("--episode-length", type=int, default=0,
                      help="steps per episode (0: the env's default)")  # fmt: skip
    data.add_argument("--noise", type=float, default=0.0, help="std of Gaussian action noise")
    data.add_argument("--seed", type=int, default=0, help="PRNG seed")
    data.add_argument("--out", required=True, help="the .npz file to write")
    data.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    data.set_defaults(func=cmd_dataset)


def _add_finetune(sub) -> None:
    ft = sub.add_parser("finetune", help="fine-tune a policy artifact with HABC on an episode "
                        "file collected elsewhere (docs: habc-external)")  # fmt: skip
    ft.add_argument("--episodes", required=True,
                    help="episode file (.npz, rlx.algos.finetune.episodes schema)")  # fmt: skip
    ft.add_argument("--policy", required=True, help="policy artifact directory (bc-style)")
    ft.add_argument("--out", required=True, help="artifact directory to write")
    ft.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override an habc config field (repeatable)")  # fmt: skip
    ft.add_argument("--updates", type=_positive_int, default=1,
                    help="HABC updates on the episodes (default 1)")  # fmt: skip
    ft.add_argument("--seed", type=int, default=0, help="PRNG seed of the heads and minibatches")
    ft.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ft.set_defaults(func=cmd_finetune)


def _add_bench(sub) -> argparse.ArgumentParser:
    from rlx.bench import command

    bench = command.add_parser(sub, _positive_int)
    bench.set_defaults(func=cmd_bench)
    return bench


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="rlx", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_list(sub)
    _add_check_env(sub)
    train, sweep = _add_train(sub), _add_sweep(sub)
    _add_eval(sub)
    _add_render(sub)
    _add_reports(sub)
    grad = _add_gradvar(sub)
    _add_dataset(sub)
    _add_finetune(sub)
    bench = _add_bench(sub)
    for p in (train, sweep, grad, bench):
        p.add_argument("--precision", choices=("default", "high", "highest"), default="default",
                       help="jax_default_matmul_precision (TF32 on GPUs unless 'highest')")  # fmt: skip
        p.add_argument("--distributed", action="store_true",
                       help="one program over several processes/hosts (jax.distributed); "
                            "only process 0 writes")  # fmt: skip
        p.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="--distributed: process 0's address (else from the cluster)")  # fmt: skip
        p.add_argument("--num-processes", type=_positive_int, default=None,
                       help="--distributed: number of processes (else from the cluster)")  # fmt: skip
        p.add_argument("--process-id", type=int, default=None,
                       help="--distributed: this process's index (else from the cluster)")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        _check_distributed_flags(args)
        if getattr(args, "distributed", False) and not getattr(args, "dry_run", False):
            # First: planning a Brax/MJX env or building an asset already initialises JAX's
            # backends, after which jax.distributed can no longer start.
            from rlx import distributed

            distributed.start(args.coordinator, args.num_processes, args.process_id)
        return args.func(args)
    except RlxError as err:
        sys.stderr.write(f"rlx: error: {err}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("rlx: interrupted; nothing was written.\n")
        return 130
    except BrokenPipeError:  # the output went to `head` & co., which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
