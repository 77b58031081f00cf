"""The `rlx` command: list, train, sweep, eval, table, plot, gradvar, dataset, bench.

Every user error (bad name, value, budget) is one line on stderr, ``rlx: error: ...``, with exit
code 2, no traceback, and nothing written.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
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


def _start_distributed(args: argparse.Namespace) -> None:
    """``jax.distributed.initialize`` with --coordinator / --num-processes / --process-id where
    given, the rest read from the cluster environment (SLURM, Open MPI, Kubernetes; the
    coordinator also from JAX_COORDINATOR_ADDRESS); RlxError when settings are missing."""
    import jax

    given = {"coordinator_address": args.coordinator, "num_processes": args.num_processes,
             "process_id": args.process_id}  # fmt: skip
    try:
        jax.distributed.initialize(**{k: v for k, v in given.items() if v is not None})
    except (ValueError, RuntimeError) as err:
        raise RlxError(
            f"--distributed could not start JAX's distributed runtime: {err}. Run under a "
            "cluster scheduler (SLURM, Open MPI) or give --coordinator HOST:PORT, "
            "--num-processes N and --process-id I."
        ) from None


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
    """Environment keywords from ``--env-set name=value`` pairs: true/false as booleans, then
    integers, numbers, or else the text."""
    out: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise RlxError(f"bad --env-set {pair!r}: expected name=value.")
        if text.lower() in ("true", "false"):
            out[name] = text.lower() == "true"
            continue
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


def cmd_list(args: argparse.Namespace) -> int:
    """Prints every environment and algorithm with a one-line description, or with a name, every
    config field of that algorithm."""
    from rlx import algorithm, envs

    if args.name is not None:
        print(describe_algorithm(algorithm.get(args.name)))
        return 0
    print("Environments:")
    for name, desc in envs.names().items():
        print(f"  {name:28s} {desc}")
    print("Unavailable here (MuJoCo Playground tasks rlx cannot build on this install):")
    for task, why in envs.playground.unavailable().items():
        print(f"  {envs.playground.PREFIX + task:28s} {why}")
    print("Algorithms:")
    for name, desc in algorithm.names().items():
        print(f"  {name:28s} {desc}")
    return 0


def _value_text(value: object) -> str:
    """A config value as ``--set`` takes it (tuples as comma-separated ints)."""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1]
        for r in rows
    ]


def describe_algorithm(algo) -> str:
    """Every config field of `algo`: default (the algorithm's own defaults applied), kind and
    docstring; and what the algorithm counts and reads."""
    from rlx import config as cfg

    config = algo.make_config()
    assets = ", ".join(
        f"{name} ({'required' if a.required else 'optional'})" for name, a in algo.assets.items()
    )
    rows = [("field", "default", "kind", "doc")]
    rows += [(name, _value_text(getattr(config, name)), kind, doc)
             for name, kind, _, doc in cfg.describe(algo.Config)]  # fmt: skip
    return "\n".join([
        f"{algo.name}: {algo.description}",
        f"budget unit: {algo.unit.label} (total_steps counts them); assets: {assets or 'none'}",
        "config fields (--set NAME=VALUE; hparam fields can also be --grid'ded in one program, "
        "static fields fix the compiled program's shapes):",
        *_table(rows),
    ])  # fmt: skip


def _train_plan(args: argparse.Namespace):
    """The validated plan and output directory of ``rlx train`` (same checks with --dry-run)."""
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
    return rp, out


def partial_dir(out: Path) -> Path:
    """Where an unfinished ``rlx train --out OUT`` keeps its checkpoints, partial curves.csv and
    live logs: ``OUT.partial`` (removed once OUT is written)."""
    out = out.resolve()
    return out.with_name(out.name + ".partial")


def _train_resume(args: argparse.Namespace, rp, partial: Path, code: str) -> dict | None:
    """The checkpoint meta an ``rlx train`` resumes from, or None for a fresh start. A checkpoint
    of another plan, or of other code (without --accept-revision-change), is refused unless
    --overwrite, which discards it. `code` identifies the code now (`code_identity`)."""
    from rlx import logging as live
    from rlx.runner import plan_hash

    meta = live.checkpoint_meta(partial / "checkpoints")
    if meta is None:
        return None
    digest = plan_hash(rp)
    if meta["hash"] != digest:
        problem = f"a different configuration (plan {meta['hash']}, this is {digest})"
        hint = "pass --overwrite to discard it, or choose another --out"
    elif meta["code"] != code and not args.accept_revision_change:
        problem = f"code {meta['code']} (this is {code})"
        hint = "pass --accept-revision-change to resume it anyway (the record says so), or --overwrite to discard it"
    else:
        return meta
    if args.overwrite:
        return None
    raise RlxError(f"{str(partial)!r} holds an unfinished run of {problem}; {hint}.")


def _live_logging(args: argparse.Namespace, rp, partial: Path, meta: dict | None):
    """The runner's callback: partial curves.csv, and TensorBoard / wandb when asked for."""
    from rlx import logging as live

    sinks: list = []
    if args.tensorboard:
        sinks.append(live.TensorBoard(partial / "tensorboard"))
    if args.wandb:
        sinks.append(live.Wandb(args.wandb, rp, partial, name=Path(args.out).name))
    resumed = meta["curves"] if meta else None
    return live.Live(rp, sinks, curves_csv=partial / "curves.csv", resumed=resumed)


def cmd_train(args: argparse.Namespace) -> int:
    """Trains seeds x grid runs and writes the run record to --out; checkpoints, partial curves
    and live logs go to OUT.partial meanwhile, and a rerun resumes from there."""
    from rlx import distributed, record, runner
    from rlx.provenance import code_identity, git_state, provenance

    rp, out = _train_plan(args)
    if args.wandb and importlib.util.find_spec("wandb") is None:
        raise RlxError("--wandb needs the wandb package: pip install 'rlx[wandb]' (or wandb).")
    partial = partial_dir(out)
    git = git_state()  # read once: the resume check and every record and artifact use it
    code = code_identity({"git": git["revision"], "diff_sha256": git["diff_sha256"]})
    meta = _train_resume(args, rp, partial, code)
    _check_export(args, rp, out)  # bad --export values fail here too
    if args.dry_run:
        print(dry_run_text(rp, args, partial, meta))
        return 0
    _setup_jax(args)
    started = provenance(git)
    on_slice_end = _policy_exporter(args, rp, started)
    primary = distributed.is_primary()
    if meta is None:
        if primary:
            shutil.rmtree(partial, ignore_errors=True)  # leftovers of a discarded or unsaved run
    elif primary:
        print(f"resuming from the checkpoint in {partial} ({_position_text(rp, meta)})")
    distributed.barrier("partial directory cleared")
    fresh = not partial.exists()
    partial.mkdir(parents=True, exist_ok=True)
    try:
        callback = _live_logging(args, rp, partial, meta) if primary else distributed.NO_LOGGING
    except RlxError:
        if fresh:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        rec = runner.run(
            rp, runs_per_slice=args.runs_per_slice, progress=primary and not args.quiet,
            checkpoint_dir=partial / "checkpoints", callback=callback, started=started,
            accept_revision_change=args.accept_revision_change, on_slice_end=on_slice_end,
        )  # fmt: skip
    except KeyboardInterrupt:
        sys.stderr.write(
            f"rlx: interrupted; run the same command again to resume from {partial}.\n"
        )
        return 130
    finally:
        callback.close()
    distributed.barrier("training done")
    if primary:
        copy_in = {name: partial / name for name in ("tensorboard", "wandb")}
        record.write_run(out, rec, overwrite=args.overwrite, copy_in=copy_in)
        shutil.rmtree(partial, ignore_errors=True)
        print(record.console_summary(rec, out))
    return 0


def _check_export(args: argparse.Namespace, rp, out: Path) -> None:
    """Refuses bad ``--export`` / ``--export-run`` values before anything runs."""
    from rlx import record

    if args.export is None:
        if args.export_run is not None:
            raise RlxError("--export-run needs --export DIR.")
        return
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


def _policy_exporter(args: argparse.Namespace, rp, started: dict):
    """``on_slice_end`` exporting ``--export DIR``'s runs (all, or ``--export-run i``) to
    ``DIR/run-<i>/`` as each slice ends, with the run's start-time provenance; None without
    --export."""
    from rlx import policy

    if args.export is None:
        return None
    export = Path(args.export)

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

    from rlx import evaluation, policy

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.overwrite:
        raise RlxError(f"{str(out)!r} exists; pass --overwrite to replace it.")
    _setup_jax(args)
    artifact = policy.load_artifact(args.dir, env=args.env)
    seed, point = _eval_key(args, artifact.meta)
    args.episodes = args.episodes or evaluation.default_episodes(artifact.env)
    evaluation.check_episodes(artifact.env, args.episodes)
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
    from rlx import envs, policy
    from rlx.report import render

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


def _position_text(rp, meta: dict) -> str:
    pos = meta["position"]
    n_slices = -(-len(rp.runs) // pos["slice_size"])
    where = f"evaluation point {pos['chunk']} of {rp.num_evals}"
    return where + (f" of slice {pos['slice'] + 1} of {n_slices}" if n_slices > 1 else "")


def _bytes_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError


def state_bytes(rp) -> tuple[int, int]:
    """Bytes of one run's training state (`jax.eval_shape` of the algorithm's init: traced, not
    compiled) and of the plan's assets (one replicated copy)."""
    import jax

    from rlx import config as cfg
    from rlx.runner.programs import step_functions

    init_one, _, _ = step_functions(rp, rp.make_env())
    algo = rp.algorithm
    assets = {name: a.data(algo.assets[name]) for name, a in rp.assets.items()}
    key = jax.random.PRNGKey(rp.seeds[0])
    shape = jax.eval_shape(init_one, key, cfg.as_leaves(rp.base_config), assets)
    state = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shape))
    data = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(assets))
    return int(state), int(data)


def dry_run_text(rp, args: argparse.Namespace, partial: Path, meta: dict | None) -> str:
    """What ``rlx train --dry-run`` prints: the resolved config, the plan, the batch's shape
    and a memory estimate."""
    import jax

    from rlx import config as cfg
    from rlx.runner import plan_hash

    algo, base = rp.algorithm, rp.base_config
    unit = algo.unit.label
    defaults = algo.make_config()
    n_points, n_runs = len(rp.points), len(rp.runs)
    lines = [f"plan {plan_hash(rp)}: {rp.algo} on {rp.env}"]
    if rp.env_kwargs:
        lines.append("env keywords: " + ", ".join(f"{k}={v}" for k, v in rp.env_kwargs.items()))
    for name, a in rp.assets.items():
        lines.append(f"asset {name}: {a.path} (sha256 {a.sha256[:16]})")
    lines.append("config (* differs from the algorithm's default; [..] a grid):")
    rows = []
    for name, kind, _, _ in cfg.describe(algo.Config):
        if name in rp.grid:
            value = "[" + ", ".join(_value_text(v) for v in rp.grid[name]) + "]"
        else:
            value = _value_text(getattr(base, name))
        changed = name in rp.grid or getattr(base, name) != getattr(defaults, name)
        rows.append((("* " if changed else "  ") + name, value, kind))
    lines += _table(rows)
    seeds = list(rp.seeds)
    grid = " x ".join(f"{k} ({len(v)})" for k, v in rp.grid.items()) or "none"
    lines += [
        f"seeds: {', '.join(map(str, seeds))} ({len(seeds)})",
        f"grid: {grid}: {n_points} point{'s' * (n_points > 1)}",
        f"runs: {n_runs} ({n_points} grid point{'s' * (n_points > 1)} x {len(seeds)} seeds)",
        f"budget: {base.total_steps:,} {unit} per run, {n_runs * base.total_steps:,} in all",
        f"updates: {base.num_updates:,} per run of {base.steps_per_update:,} {unit}",
        f"chunks: {rp.num_evals} of {rp.updates_per_chunk:,} updates ({rp.steps_per_chunk:,} "
        f"{unit}), each followed by an evaluation of {rp.eval_episodes} episodes "
        f"(and one before training)",
    ]
    devices = len(jax.devices())
    size = min(args.runs_per_slice or n_runs, n_runs)
    padded = size + (-size) % devices
    n_slices = -(-n_runs // size)
    shape = " x ".join(f"{f} {getattr(base, f)}" for f in ("num_envs", "unroll_length")
                       if hasattr(base, f))  # fmt: skip
    lines.append(
        f"batch: {padded} runs per compiled program ({n_slices} slice{'s' * (n_slices > 1)}"
        f"{', padded to a multiple of ' + str(devices) + ' devices' if padded != size else ''})"
        f" x {base.steps_per_update:,} {unit} per update" + (f" ({shape})" if shape else "")
    )
    per_run, data = state_bytes(rp)
    lines.append(
        f"memory: training state {_bytes_text(per_run)} per run; {padded} runs at once = "
        f"{_bytes_text(per_run * padded)}"
        + (f" (all {n_runs} runs: {_bytes_text(per_run * n_runs)})" if n_slices > 1 else "")
        + (f", plus assets {_bytes_text(data)} (one copy)" if data else "")
        + " (jax.eval_shape of init, nothing compiled: the chunk program's temporaries are not "
        "included; without --runs-per-slice a device short of memory gets smaller slices)"
    )
    if meta is not None:
        lines.append(f"resume: from {partial} ({_position_text(rp, meta)})")
    lines.append(f"out: {args.out} (nothing written: --dry-run)")
    return "\n".join(lines)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Runs (or resumes) a sweep file, then writes its tables and plots."""
    from rlx import distributed
    from rlx import sweep as sweep_mod
    from rlx.report import table

    sw = sweep_mod.load(args.file, quick=args.quick)
    shard = sweep_mod.Shard.parse(args.shard) if args.shard else None
    if shard is not None and args.new:
        raise RlxError(
            "--new cannot be combined with --shard (it would move other shards' results)."
        )
    out = Path(args.out) if args.out else Path("results") / sw.name
    _setup_jax(args)
    sweep_mod.run_sweep(
        sw, out, new=args.new, progress=not args.quiet, runs_per_slice=args.runs_per_slice,
        tensorboard=args.tensorboard, accept_revision_change=args.accept_revision_change,
        keep_policies=args.keep_policies, shard=shard,
    )  # fmt: skip
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


def cmd_gradvar(args: argparse.Namespace) -> int:
    """Runs the [variance] section of a sweep file: policy-gradient variance per baseline."""
    from rlx.algos.factorized import gradvar

    spec = gradvar.load(args.file, quick=args.quick)
    out = Path(args.out) if args.out else Path("results") / spec["name"] / "variance"
    _setup_jax(args)
    gradvar.run(spec, out)
    print((out / "variance.md").read_text())
    print(f"wrote {out}/variance.json, variance.md, variance_vs_dimension.png")
    return 0


def cmd_dataset_make(args: argparse.Namespace) -> int:
    """Builds an asset from a named recipe (``rlx dataset make NAME --out PATH``), or lists the
    recipes (``rlx dataset make list``)."""
    from rlx import recipes
    from rlx.assets import content_hash

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


def _bench_envs(args: argparse.Namespace, known: dict, what: str) -> list[str]:
    """--envs (default: every env of the `what` bench); RlxError naming an unknown one."""
    from rlx.errors import unknown

    names = args.envs.split(",") if args.envs else list(known)
    for name in names:
        if name not in known:
            raise unknown(f"{what} bench environment", name, known)
    return names


def cmd_bench(args: argparse.Namespace) -> int:
    """Runs the throughput benchmark and writes results/bench."""
    from rlx.bench import throughput

    os.environ["RLX_COMPILATION_CACHE"] = ""  # compile seconds are measured: no persistent cache
    _setup_jax(args)
    if args.offline:
        from rlx.bench import offline_gc

        print(offline_gc.main(Path(args.out)).read_text())
        return 0
    if args.matched:
        from rlx.bench import matched

        names = _bench_envs(args, matched.MATCHED, "matched")
        seeds = [int(s) for s in (args.seeds or "1,8").split(",")]
        path = matched.main(Path(args.out), names, seeds, args.reps, args.quick, not args.no_peer)
        print(path.read_text())
        return 0
    if args.learning:
        from rlx.bench import learning

        print(learning.main(Path(args.out), args.reps, args.quick, not args.no_peer).read_text())
        return 0
    if args.compile:
        from rlx.bench import compile_time

        print(compile_time.main(Path(args.out)).read_text())
        return 0
    if args.scaling:
        from rlx.bench import scaling

        names = _bench_envs(args, scaling.PPO_POINTS, "scaling")
        path = scaling.main(Path(args.out), names, args.gpu_scale, not args.no_offpolicy)
        print(path.read_text())
        return 0
    if args.assets:
        from rlx.bench import assets_memory

        path = assets_memory.main(Path(args.out), transitions=args.transitions)
        print(path.read_text())
        return 0
    throughput.main(args)
    return 0


def _add_list(sub) -> None:
    lst = sub.add_parser("list", help="list environments and algorithms, or one algorithm's config")
    lst.add_argument("name", nargs="?", default=None,
                     help="an algorithm: print every config field, its default, kind and doc")  # fmt: skip
    lst.set_defaults(func=cmd_list)


def _add_train(sub) -> argparse.ArgumentParser:
    train = sub.add_parser("train", help="train seeds x grid runs in one compiled program")
    train.add_argument("--algo", required=True, help="algorithm name (see rlx list)")
    train.add_argument("--env", required=True, help="environment name (see rlx list)")
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
    sweep.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events")
    sweep.add_argument("--keep-policies", action=argparse.BooleanOptionalAction, default=True,
                       help="export every run's final policy to <out>/policies/ (default: on)")  # fmt: skip
    sweep.add_argument("--shard", default=None, metavar="K/N",
                       help="run only every N-th cell starting at K (a job array sharing --out)")  # fmt: skip
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


def _add_bench(sub) -> argparse.ArgumentParser:
    bench = sub.add_parser("bench", help="throughput benchmark: raw env vs PPO vs Brax PPO")
    bench.add_argument("--out", default="results/bench", help="directory for the tables")
    bench.add_argument("--quick", action="store_true", help="small budgets (CPU smoke run)")
    bench.add_argument("--no-peer", action="store_true", help="skip the Brax PPO peer rows")
    bench.add_argument("--envs", default=None, help="comma-separated env names to benchmark")
    bench.add_argument(
        "--seeds",
        default=None,
        help="comma-separated seed counts (default 1,8,32; with --matched 1,8)",
    )
    bench.add_argument(
        "--matched",
        action="store_true",
        help="rlx PPO vs Brax PPO with identical settings (results/bench/matched.md)",
    )
    bench.add_argument(
        "--learning",
        action="store_true",
        help="rlx PPO vs Brax PPO learning ant at 8x the matched envs (learning.md)",
    )
    bench.add_argument(
        "--reps",
        type=_positive_int,
        default=3,
        help="repetitions per row of --matched or --learning (default 3)",
    )
    bench.add_argument(
        "--compile",
        action="store_true",
        help="cold and warm compile seconds per algorithm (compile.md)",
    )
    bench.add_argument(
        "--scaling",
        action="store_true",
        help="PPO cost vs seeds and envs, TD3/SAC gradient steps/s (scaling.md)",
    )
    bench.add_argument(
        "--gpu-scale",
        action="store_true",
        help="with --scaling: accelerator-scale points (ant to 256 seeds)",
    )
    bench.add_argument(
        "--no-offpolicy",
        action="store_true",
        help="with --scaling: PPO points only, without the TD3/SAC gradient-step rates",
    )
    bench.add_argument("--assets", action="store_true",
                       help="instead: memory of one dataset asset shared by 1 and 16 seeds")  # fmt: skip
    bench.add_argument("--offline", action="store_true",
                       help="instead: TRL/GCIQL gradient steps/s and memory, 1 and 8 seeds")  # fmt: skip
    bench.add_argument("--transitions", type=_positive_int, default=10_000_000,
                       help="with --assets: dataset size")  # fmt: skip
    bench.set_defaults(func=cmd_bench)
    return bench


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="rlx", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_list(sub)
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
                       help="one program over several processes/hosts (jax.distributed); "
                            "only process 0 writes")  # fmt: skip
        p.add_argument(
            "--coordinator",
            default=None,
            metavar="HOST:PORT",
            help="--distributed: process 0's address (else from the cluster)",
        )
        p.add_argument(
            "--num-processes",
            type=_positive_int,
            default=None,
            help="--distributed: number of processes (else from the cluster)",
        )
        p.add_argument(
            "--process-id",
            type=int,
            default=None,
            help="--distributed: this process's index (else from the cluster)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        _check_distributed_flags(args)
        if getattr(args, "distributed", False) and not getattr(args, "dry_run", False):
            # First: planning a Brax/MJX env or building an asset already initialises JAX's
            # backends, after which jax.distributed can no longer start.
            _start_distributed(args)
        return args.func(args)
    except RlxError as err:
        sys.stderr.write(f"rlx: error: {err}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("rlx: interrupted; nothing was written.\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
