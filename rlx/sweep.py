"""Sweep files: one experiment's algorithms x environments, budgets, seeds, grids, tables, plots.

A sweep file is TOML::

    name = "quickstart"                      # results go to results/<name>/
    description = "PPO on two swing-up tasks"
    algorithms = ["ppo"]
    environments = ["pendulum_swingup", "cartpole_swingup"]
    seeds = 8                                # seeds 0..7 of every grid point of every cell
    total_steps = 300_000                    # env steps per run (the full budget)
    quick_total_steps = 60_000               # optional: the budget under --quick
    [quick]                                  # optional: overrides under --quick, applied to
    hidden = [64, 64]                        # every algorithm that has the field
    num_evals = 10                           # evaluation points (must divide the updates)
    eval_episodes = 16                       # deterministic episodes per evaluation

    [settings.ppo]                           # config overrides of an algorithm, every env
    learning_rate = 1e-3
    [grid.ppo]                               # hyperparameter grid, vmapped in one program
    gamma = [0.97, 0.99]
    [environment."brax:ant"]                 # environment keywords (backend for brax:*)
    backend = "mjx"
    [cell."ppo/cartpole_swingup"]            # overrides for one algorithm/environment cell
    total_steps = 450_000
    [reference."ppo/pendulum_swingup"]       # a published figure shown beside ours
    value = -150.0
    source = "Paper et al. 2025, Table 2"
    [table]
    metrics = ["eval/return", "eval/goal_reached"]   # the first is the headline (IQM, CI)
    [plot]
    metric = "eval/return"                   # or metrics = [...]: one PNG each
    mark_fraction = 0.9                      # optional vertical line at 90% of the budget
    mark_label = "baseline disabled"

Every cell (algorithm, environment) runs its ``seeds x grid`` batch as one compiled program.
The whole file is validated before anything runs; errors name the file, line and key.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from rlx import algorithm, envs, runner
from rlx import config as cfg
from rlx.errors import RlxError

TOP_KEYS = {
    "name": "experiment name (results/<name>/)",
    "description": "one line",
    "algorithms": "list of algorithm names",
    "environments": "list of environment names",
    "seeds": "number of seeds (positive int)",
    "total_steps": "env steps per run",
    "quick_total_steps": "env steps per run under --quick",
    "quick": "[quick] config overrides under --quick (each algorithm that has the field)",
    "variance": "[variance] the gradient-variance study of `rlx gradvar` (not run by rlx sweep)",
    "num_evals": "evaluation points",
    "eval_episodes": "episodes per evaluation",
    "settings": "[settings.<algo>] config overrides",
    "grid": "[grid.<algo>] hyperparameter lists",
    "environment": '[environment."<env>"] environment keywords',
    "cell": '[cell."<algo>/<env>"] overrides of one cell',
    "reference": '[reference."<algo>/<env>"] value and source of a published figure',
    "table": "[table] metrics",
    "plot": "[plot] metric",
}
REFERENCE_KEYS = {"value", "source", "metric"}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One algorithm on one environment: a validated batch of runs."""

    algo: str
    env: str
    plan: runner.RunPlan

    @property
    def key(self) -> str:
        """'algo/env', as in the sweep file."""
        return f"{self.algo}/{self.env}"

    @property
    def dirname(self) -> str:
        """A filesystem-safe directory name."""
        return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{self.algo}__{self.env}")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated sweep file."""

    path: Path
    name: str
    description: str
    cells: tuple[Cell, ...]
    references: dict[str, dict[str, Any]]
    table_metrics: tuple[str, ...]
    plot_metric: str
    plot_metrics: tuple[str, ...]
    plot_mark: dict[str, Any] | None
    quick: bool
    raw: dict[str, Any]

    def digest(self) -> str:
        """Hash of everything that determines the numbers: every cell's plan hash."""
        spec = {c.key: runner.plan_hash(c.plan) for c in self.cells}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class _Where:
    """Formats errors as 'FILE:LINE: message' using the line where a key appears."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def line(self, *keys: str) -> int | None:
        for key in reversed(keys):
            pattern = re.compile(rf'^\s*(\[+\s*)?([\w."/:-]*\.)?"?{re.escape(key)}"?\s*(=|\]|\.)')
            for n, text in enumerate(self.lines, 1):
                if pattern.search(text):
                    return n
        return None

    def error(self, message: str, *keys: str) -> RlxError:
        n = self.line(*keys) if keys else None
        return RlxError(f"{self.path}{f':{n}' if n else ''}: {message}")


def _expect(
    where: _Where, value: Any, kind: type | tuple[type, ...], what: str, *keys: str
) -> None:
    ok = isinstance(value, kind) and not (
        kind in (int, float, (int, float)) and isinstance(value, bool)
    )
    if not ok:
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise where.error(f"{what} must be {names}, got {value!r}.", *keys)


def _coerce(where: _Where, config_cls: type, key: str, value: Any, ctx: str) -> Any:
    """A TOML value as the type of config field `key` (ints are accepted for floats)."""
    fields = cfg.fields(config_cls)
    if key not in fields:
        from rlx.errors import unknown

        raise where.error(f"{ctx}: {unknown('setting', key, fields)}", key)
    default = fields[key].default
    if isinstance(default, bool):
        _expect(where, value, bool, f"{ctx}.{key}", key)
    elif isinstance(default, int):
        _expect(where, value, int, f"{ctx}.{key}", key)
    elif isinstance(default, float):
        _expect(where, value, (int, float), f"{ctx}.{key}", key)
        value = float(value)
    elif isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise where.error(f"{ctx}.{key} must be a list of ints, got {value!r}.", key)
        value = tuple(value)
    elif isinstance(default, str):
        _expect(where, value, str, f"{ctx}.{key}", key)
    return value


def load(path: Path | str, quick: bool = False) -> Sweep:
    """Parses and validates a sweep file; raises RlxError naming the file, line and key."""
    path = Path(path)
    if not path.is_file():
        raise RlxError(f"sweep file {str(path)!r} does not exist.")
    text = path.read_text()
    where = _Where(path, text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RlxError(f"{path}: TOML syntax error: {err}") from None

    for key in raw:
        if key not in TOP_KEYS:
            from rlx.errors import unknown

            raise where.error(str(unknown("top-level key", key, TOP_KEYS)), key)
    for key in ("name", "algorithms", "environments", "seeds", "total_steps"):
        if key not in raw:
            raise where.error(f"missing required key {key!r} ({TOP_KEYS[key]}).")
    _expect(where, raw["name"], str, "name", "name")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", raw["name"]):
        raise where.error(
            f"name must use letters, digits, '_', '-', '.', got {raw['name']!r}.", "name"
        )
    for key in ("algorithms", "environments"):
        value = raw[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise where.error(f"{key} must be a non-empty list of names, got {value!r}.", key)
    for algo in raw["algorithms"]:
        if algo not in algorithm.ALGORITHMS:
            raise where.error(str(algorithm_error(algo)), "algorithms")
    for env in raw["environments"]:
        if env not in envs.names():
            from rlx.errors import unknown

            raise where.error(str(unknown("environment", env, envs.names())), "environments")
    for key in ("seeds", "total_steps", "quick_total_steps", "num_evals", "eval_episodes"):
        if key in raw:
            _expect(where, raw[key], int, key, key)
            if raw[key] <= 0:
                raise where.error(f"{key} must be a positive integer, got {raw[key]}.", key)
    for section in (
        "settings",
        "grid",
        "environment",
        "cell",
        "reference",
        "table",
        "plot",
        "quick",
    ):
        if section in raw and not isinstance(raw[section], dict):
            raise where.error(f"{section} must be a table ([{section}...]).", section)

    settings = raw.get("settings", {})
    grids = raw.get("grid", {})
    for section, table in (("settings", settings), ("grid", grids)):
        for algo in table:
            if algo not in raw["algorithms"]:
                raise where.error(
                    f"[{section}.{algo}] names an algorithm not in algorithms "
                    f"({', '.join(raw['algorithms'])}).",
                    algo,
                )
    env_kwargs = raw.get("environment", {})
    for env, kwargs in env_kwargs.items():
        if env not in raw["environments"]:
            raise where.error(
                f'[environment."{env}"] names an environment not in environments.', env
            )
        _expect(where, kwargs, dict, f'environment."{env}"', env)
    cells_raw = raw.get("cell", {})
    keys = {f"{a}/{e}" for a in raw["algorithms"] for e in raw["environments"]}
    for section in ("cell", "reference"):
        for key in raw.get(section, {}):
            if key not in keys:
                from rlx.errors import unknown

                raise where.error(str(unknown(f"{section} key", key, keys)), key)
    for key, ref in raw.get("reference", {}).items():
        _expect(where, ref, dict, f'reference."{key}"', key)
        extra = set(ref) - REFERENCE_KEYS
        if extra or "value" not in ref:
            raise where.error(
                f'reference."{key}" needs value (and optionally source, metric); '
                f"got keys {sorted(ref)}.",
                key,
            )
        _expect(where, ref["value"], (int, float), f'reference."{key}".value', key)

    table_metrics = raw.get("table", {}).get("metrics", ["eval/return"])
    plot_raw = raw.get("plot", {})
    plot_metric = plot_raw.get("metric", table_metrics[0] if table_metrics else "eval/return")
    for section, allowed in (
        ("table", {"metrics"}),
        ("plot", {"metric", "metrics", "mark_fraction", "mark_label"}),
    ):
        for key in raw.get(section, {}):
            if key not in allowed:
                raise where.error(
                    f"unknown key {key!r} in [{section}]; allowed: {', '.join(allowed)}.", key
                )
    if (
        not isinstance(table_metrics, list)
        or not table_metrics
        or not all(isinstance(m, str) for m in table_metrics)
    ):
        raise where.error(
            f"[table] metrics must be a non-empty list of metric names, got {table_metrics!r}.",
            "metrics",
        )
    _expect(where, plot_metric, str, "[plot] metric", "metric")
    plot_metrics = plot_raw.get("metrics", [plot_metric])
    if (
        not isinstance(plot_metrics, list)
        or not plot_metrics
        or not all(isinstance(m, str) for m in plot_metrics)
    ):
        raise where.error(
            f"[plot] metrics must be a non-empty list of metric names, got {plot_metrics!r}.",
            "metrics",
        )
    plot_mark = None
    if "mark_fraction" in plot_raw:
        frac = plot_raw["mark_fraction"]
        _expect(where, frac, (int, float), "[plot] mark_fraction", "mark_fraction")
        if not 0 < frac <= 1:
            raise where.error(
                f"[plot] mark_fraction must be in (0, 1] (a share of the budget), got {frac}.",
                "mark_fraction",
            )
        label = plot_raw.get("mark_label", "")
        _expect(where, label, str, "[plot] mark_label", "mark_label")
        plot_mark = {"fraction": float(frac), "label": label}

    quick_raw = raw.get("quick", {})
    for key in quick_raw:
        if not any(key in cfg.fields(algorithm.get(a).Config) for a in raw["algorithms"]):
            from rlx.errors import unknown

            allowed = {k for a in raw["algorithms"] for k in cfg.fields(algorithm.get(a).Config)}
            raise where.error(str(unknown("[quick] setting", key, allowed)), key)
    cells = []
    for algo in raw["algorithms"]:
        module = algorithm.get(algo)
        quick_over = {
            k: _coerce(where, module.Config, k, v, "quick")
            for k, v in quick_raw.items()
            if k in cfg.fields(module.Config)
        }
        overrides = {
            k: _coerce(where, module.Config, k, v, f"settings.{algo}")
            for k, v in settings.get(algo, {}).items()
        }
        grid: dict[str, list[Any]] = {}
        for k, values in grids.get(algo, {}).items():
            if not isinstance(values, list) or not values:
                raise where.error(f"grid.{algo}.{k} must be a non-empty list, got {values!r}.", k)
            grid[k] = [_coerce(where, module.Config, k, v, f"grid.{algo}") for v in values]
            if not cfg.is_hparam(cfg.fields(module.Config)[k]):
                allowed = [f.name for f in dataclasses.fields(module.Config) if cfg.is_hparam(f)]
                raise where.error(
                    f"grid.{algo}.{k} is a static field (it changes the compiled program); "
                    f"grid keys allowed: {', '.join(allowed)}.",
                    k,
                )
        for env in raw["environments"]:
            key = f"{algo}/{env}"
            cell_over = dict(overrides)
            total = raw["total_steps"]
            for k, v in cells_raw.get(key, {}).items():
                cell_over[k] = _coerce(where, module.Config, k, v, f'cell."{key}"')
            total = cell_over.pop("total_steps", total)
            if quick:
                total = raw.get("quick_total_steps", total)
                cell_over.update({k: v for k, v in quick_over.items() if k != "total_steps"})
            try:
                rp = runner.plan(
                    algo, env, seeds=raw["seeds"], total_steps=total, overrides=cell_over, grid=grid,
                    num_evals=raw.get("num_evals", 10), eval_episodes=raw.get("eval_episodes", 16),
                    env_kwargs=dict(env_kwargs.get(env, {})),
                )  # fmt: skip
            except RlxError as err:
                raise where.error(f"cell {key}: {err}", key) from None
            cells.append(Cell(algo, env, rp))
    return Sweep(
        path=path,
        name=raw["name"],
        description=raw.get("description", ""),
        cells=tuple(cells),
        references=raw.get("reference", {}),
        table_metrics=tuple(table_metrics),
        plot_metric=plot_metrics[0],
        plot_metrics=tuple(plot_metrics),
        plot_mark=plot_mark,
        quick=quick,
        raw=raw,
    )


def algorithm_error(name: str) -> RlxError:
    """The unknown-algorithm error with suggestions."""
    from rlx.errors import unknown

    return unknown("algorithm", name, algorithm.ALGORITHMS)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def prepare_dir(sweep: Sweep, out: Path, new: bool) -> Path:
    """Checks `out` belongs to this sweep's configuration (or is new); with `new`, moves a
    directory of another configuration aside (nothing is deleted). Returns `out`."""
    meta_path = out / "sweep.json"
    meta = _read_json(meta_path)
    if out.exists() and any(out.iterdir()):
        if meta is None or meta.get("digest") != sweep.digest():
            if not new:
                old = meta.get("digest") if meta else "none (not a sweep directory)"
                raise RlxError(
                    f"results directory {str(out)!r} was written by a different configuration "
                    f"(hash {old} != {sweep.digest()}); pass --new to move it aside and start afresh."
                )
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            aside = out.with_name(f"{out.name}.replaced-{stamp}")
            shutil.move(str(out), str(aside))
            print(f"moved the old results to {aside}")
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "kind": "rlx.sweep",
        "name": sweep.name,
        "description": sweep.description,
        "digest": sweep.digest(),
        "quick": sweep.quick,
        "cells": {c.key: {"dir": c.dirname, "hash": runner.plan_hash(c.plan)} for c in sweep.cells},
        "references": sweep.references,
        "table_metrics": list(sweep.table_metrics),
        "plot_metric": sweep.plot_metric,
        "plot_metrics": list(sweep.plot_metrics),
        "plot_mark": sweep.plot_mark,
        "file": sweep.raw,
    }
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(meta_path)
    return out


def run_sweep(
    sweep: Sweep,
    out: Path,
    *,
    new: bool = False,
    progress: bool = True,
    runs_per_slice: int | None = None,
    tensorboard: bool = False,
) -> list[Path]:
    """Runs every unfinished cell (resuming an interrupted one from its checkpoint) and returns
    the cell directories. Finished cells with the same configuration hash are skipped."""
    from rlx import record

    prepare_dir(sweep, out, new)
    done = []
    for cell in sweep.cells:
        cell_dir = out / "cells" / cell.dirname
        existing = _read_json(cell_dir / "record.json")
        digest = runner.plan_hash(cell.plan)
        if existing is not None and existing.get("config_hash") == digest:
            print(f"[sweep] {cell.key}: finished earlier, skipped")
            done.append(cell_dir)
            continue
        print(
            f"[sweep] {cell.key}: {len(cell.plan.runs)} runs x {cell.plan.base_config.total_steps:,} env steps"
        )
        ckpt_dir = out / "checkpoints" / cell.dirname
        callback = (
            _tensorboard_callback(out / "tensorboard" / cell.dirname, cell) if tensorboard else None
        )
        rec = runner.run(
            cell.plan, progress=progress, runs_per_slice=runs_per_slice,
            checkpoint_dir=ckpt_dir, callback=callback,
        )  # fmt: skip
        record.write_run(cell_dir, rec, overwrite=True)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        print(record.console_summary(rec, None))
        done.append(cell_dir)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return done


def _tensorboard_callback(logdir: Path, cell: Cell):
    """Writes each evaluation point's metrics (mean over the seeds of each grid point)."""
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(logdir))
    points = cell.plan.points

    def callback(env_steps: int, metrics_by_run: dict[int, dict[str, float]]) -> None:
        for g, point in enumerate(points):
            members = [m for i, m in metrics_by_run.items() if cell.plan.runs[i][0] == g]
            if not members:
                continue
            prefix = ",".join(f"{k}={v}" for k, v in point.items()) or "default"
            for key in members[0]:
                values = [m[key] for m in members]
                writer.add_scalar(f"{prefix}/{key}", sum(values) / len(values), env_steps)
        writer.flush()

    return callback
