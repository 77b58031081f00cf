"""Sweep files: one experiment's algorithms x environments, budgets, seeds, grids, tables, plots.

A sweep file is TOML::

    name = "quickstart"                      # results go to results/<name>/
    description = "PPO on two swing-up tasks"
    algorithms = ["ppo"]
    environments = ["pendulum_swingup", "cartpole_swingup"]
    seeds = 8                                # seeds 0..7 of every grid point of every cell
                                             # (or a list of distinct seeds: seeds = [5, 6, 9])
    total_steps = 300_000                    # env steps per run (the full budget)
    quick_total_steps = 60_000               # optional: the budget under --quick
    [quick]                                  # optional: overrides under --quick, applied to
    hidden = [64, 64]                        # every algorithm that has the field (or give the
                                             # quick budget here as total_steps, not both)
    [quick.sac]                              # optional: --quick overrides of one algorithm
    num_envs = 8                             # (applied last, so they win)
    num_evals = 10                           # evaluation points (must divide the updates)
    eval_episodes = 16                       # deterministic episodes per evaluation (default
                                             # 16, or a multiple of the env's evaluation tasks)
    final_evals = 3                          # optional: a run's score in tables and plots is
                                             # the mean of its last 3 evaluation points
                                             # (default 1: the last; at most num_evals). A
                                             # reporting rule: no plan hash depends on it

    [settings.ppo]                           # config overrides of an algorithm, every env
    learning_rate = 1e-3
    [grid.ppo]                               # hyperparameter grid, vmapped in one program
    gamma = [0.97, 0.99]
    [environment."brax:ant"]                 # environment keywords (backend for brax:*)
    backend = "mjx"
    [assets."pointmaze_medium"]              # read-only inputs of the cells on this env, for
    dataset = "make:pointmaze-medium-navigate"   # each algorithm that reads an asset of that
    distances = "data/medium.npz"            # name: a path, "make:RECIPE" (built once into
                                             # the asset cache, rlx.data.recipes), or a table
                                             # {make = RECIPE, episodes = 100, seed = 1}
    [cell."ppo/cartpole_swingup"]            # overrides for one algorithm/environment cell
    total_steps = 450_000
    [reference."ppo/pendulum_swingup"]       # a published figure, listed apart from ours
    value = -150.0                           # (never in our rows) with its budget in full
    source = "Paper et al. 2025, Table 2"
    steps = 3_000_000                        # optional budget fields (see REFERENCE_BUDGET):
    batch = 256                              # steps, batch, network, seeds, episodes,
    network = "256-256 MLPs"                 # evaluation, data, gamma
    seeds = 10
    [reference."*"]                          # optional: fields shared by every reference
    source = "Paper et al. 2025"             # (each entry's own fields win; no value here)
    [table]
    metrics = ["eval/return", "eval/goal_reached"]   # the first is the headline (IQM, CI)
    [plot]
    metric = "eval/return"                   # or metrics = [...]: one PNG each
    mark_fraction = 0.9                      # optional vertical line at 90% of the budget
    mark_label = "baseline disabled"
    binned = ["value/mae"]                   # optional: final values of name@<lo>-<hi>
                                             # metrics against the bin (<name>_by_bin.png)

Every cell (algorithm, environment) runs its ``seeds x grid`` batch as one compiled program. A
cell's config overrides are layered as `rlx.spec.layer` documents: defaults < ``total_steps`` <
``[settings.<algo>]`` < ``[cell."<algo>/<env>"]`` < the --quick overrides (``[quick]``,
``quick_total_steps``).
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

from rlx import algorithm, envs, files, runner, spec
from rlx import config as cfg
from rlx.errors import RlxError, unknown
from rlx.provenance import code_identity, provenance
from rlx.runner.plan import seed_list

TOP_KEYS = {
    "name": "experiment name (results/<name>/)",
    "description": "one line",
    "algorithms": "list of algorithm names",
    "environments": "list of environment names",
    "seeds": "number of seeds (positive int: seeds 0..N-1) or a list of distinct seeds >= 0",
    "total_steps": "env steps per run",
    "quick_total_steps": "env steps per run under --quick",
    "quick": "[quick] config overrides under --quick (each algorithm that has the field; "
    "[quick.<algo>] for one algorithm)",
    "variance": "[variance] the gradient-variance study of `rlx gradvar` (not run by rlx sweep)",
    "num_evals": "evaluation points",
    "eval_episodes": "episodes per evaluation",
    "final_evals": "a run's score is the mean of its last N evaluation points (default 1)",
    "settings": "[settings.<algo>] config overrides",
    "grid": "[grid.<algo>] hyperparameter lists",
    "environment": '[environment."<env>"] environment keywords',
    "assets": '[assets."<env>"] asset name = path, "make:RECIPE" or {make = RECIPE, ...}',
    "cell": '[cell."<algo>/<env>"] overrides of one cell',
    "reference": '[reference."<algo>/<env>"] a published figure: value, source, budget '
    '([reference."*"]: fields shared by all)',
    "table": "[table] metrics",
    "plot": "[plot] metric",
}
REFERENCE_BUDGET: dict[str, tuple[type | tuple[type, ...], str]] = {
    "steps": (int, "training steps at which the figure holds (in its source's unit)"),
    "batch": (int, "batch size"),
    "network": (str, "network sizes"),
    "seeds": (int, "seeds"),
    "episodes": ((int, str), "evaluation episodes (e.g. '50 per task x 5 tasks')"),
    "evaluation": (str, "evaluation schedule and how the figure averages it"),
    "data": (str, "the data or environment interaction it trained on"),
    "gamma": ((int, float), "discount"),
}
"""A reference's optional budget fields: type and meaning. The table lists them in full beside
the figure, in a table of its own."""
REFERENCE_KEYS = {
    "value",
    "source",
    "metric",
    "quick_value",
    "quick_steps",
    "quick_source",
    *REFERENCE_BUDGET,
}
"""A reference's keys: ``value`` (required) and its ``source``, the table ``metric`` it is a
figure of (default: the headline), its budget (`REFERENCE_BUDGET`); ``quick_value`` (with
``quick_steps``/``quick_source``) is the same figure read at a smaller budget, listed as a
second figure."""
SHARED_REFERENCE = "*"
"""``[reference."*"]``: fields shared by every reference of the file (each entry's own win)."""


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
    final_evals: int
    table_metrics: tuple[str, ...]
    plot_metric: str
    plot_metrics: tuple[str, ...]
    plot_mark: dict[str, Any] | None
    plot_binned: tuple[str, ...]
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

    def key_line(self, section: str | None, key: str) -> int | None:
        """The line of ``key = ...`` inside the table ``[section]`` (top level when None)."""
        current = None
        for n, text in enumerate(self.lines, 1):
            header = re.match(r"^\s*\[+([^\]]+)\]+\s*(#.*)?$", text)
            if header:
                current = re.sub(r"\s+", "", header.group(1))
            elif current == section and re.match(rf'^\s*"?{re.escape(key)}"?\s*=', text):
                return n
        return None


def _expect(
    where: _Where, value: Any, kind: type | tuple[type, ...], what: str, *keys: str
) -> None:
    ok = isinstance(value, kind) and not (
        kind in (int, float, (int, float)) and isinstance(value, bool)
    )
    if not ok:
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise where.error(f"{what} must be {names}, got {value!r}.", *keys)


def _expect_names(where: _Where, value: Any, what: str, key: str) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise where.error(f"{what} must be a non-empty list of names, got {value!r}.", key)


def read_toml(path: Path | str) -> tuple[dict[str, Any], _Where]:
    """A sweep file's TOML and a locator of its keys' lines (for errors); raises RlxError."""
    path = Path(path)
    if not path.is_file():
        raise RlxError(f"sweep file {str(path)!r} does not exist.")
    text = path.read_text()
    try:
        return tomllib.loads(text), _Where(path, text)
    except tomllib.TOMLDecodeError as err:
        raise RlxError(f"{path}: TOML syntax error: {err}") from None


def _check_top(raw: dict[str, Any], where: _Where) -> None:
    """Top-level keys: known, required ones present, names and counts well-typed."""
    for key in raw:
        if key not in TOP_KEYS:
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
        _expect_names(where, raw[key], key, key)
    for algo in raw["algorithms"]:  # built-in, registered, entry point or package.module:ATTR
        try:
            algorithm.get_algorithm(algo)
        except RlxError as err:
            raise where.error(str(err), "algorithms") from None
    for env in raw["environments"]:
        try:
            envs.check_name(env)
        except RlxError as err:
            raise where.error(str(err), "environments") from None
    _check_seeds(raw["seeds"], where)
    for key in ("total_steps", "quick_total_steps", "num_evals", "eval_episodes", "final_evals"):
        if key in raw:
            _expect(where, raw[key], int, key, key)
            if raw[key] <= 0:
                raise where.error(f"{key} must be a positive integer, got {raw[key]}.", key)
    if raw.get("final_evals", 1) > raw.get("num_evals", 10):
        raise where.error(
            f"final_evals ({raw['final_evals']}) must be at most num_evals "
            f"({raw.get('num_evals', 10)}): a run's score averages its last evaluation points.",
            "final_evals",
        )
    for section in (
        "settings",
        "grid",
        "environment",
        "assets",
        "cell",
        "reference",
        "table",
        "plot",
        "quick",
    ):
        if section in raw and not isinstance(raw[section], dict):
            raise where.error(f"{section} must be a table ([{section}...]).", section)


def _check_seeds(seeds: Any, where: _Where) -> None:
    """``seeds = N`` (a positive int) or ``seeds = [...]`` (distinct ints >= 0, at least one)."""
    if not isinstance(seeds, int | list) or isinstance(seeds, bool):
        raise where.error(f"seeds must be int or a list of ints, got {seeds!r}.", "seeds")
    try:
        seed_list(seeds)
    except RlxError as err:
        raise where.error(str(err), "seeds") from None


def _check_sections(raw: dict[str, Any], where: _Where) -> None:
    """[settings]/[grid] name listed algorithms, [environment] listed envs, [cell]/[reference]
    listed cells, and references carry a numeric value."""
    for section in ("settings", "grid"):
        for algo in raw.get(section, {}):
            if algo not in raw["algorithms"]:
                raise where.error(
                    f"[{section}.{algo}] names an algorithm not in algorithms "
                    f"({', '.join(raw['algorithms'])}).",
                    algo,
                )
    for env, kwargs in raw.get("environment", {}).items():
        if env not in raw["environments"]:
            raise where.error(
                f'[environment."{env}"] names an environment not in environments.', env
            )
        _expect(where, kwargs, dict, f'environment."{env}"', env)
    _check_assets(raw, where)
    keys = {f"{a}/{e}" for a in raw["algorithms"] for e in raw["environments"]}
    for section in ("cell", "reference"):
        for key in raw.get(section, {}):
            if key not in keys and not (section == "reference" and key == SHARED_REFERENCE):
                raise where.error(str(unknown(f"{section} key", key, keys)), key)
    for key, ref in raw.get("reference", {}).items():
        _check_reference(where, key, ref)
    if "total_steps" in raw.get("quick", {}) and "quick_total_steps" in raw:
        raise where.error(
            "the quick budget is given twice ([quick] total_steps and quick_total_steps); "
            "keep one.",
            "quick_total_steps",
        )


def _check_reference(where: _Where, key: str, ref: Any) -> None:
    """One [reference."<algo>/<env>"] entry: known keys, a numeric value (none in the shared
    ``[reference."*"]``), strings and numbers where `REFERENCE_BUDGET` says."""
    _expect(where, ref, dict, f'reference."{key}"', key)
    shared = key == SHARED_REFERENCE
    allowed = REFERENCE_KEYS - ({"value", "quick_value"} if shared else set())
    if set(ref) - allowed or ("value" in ref) == shared:
        need = "may set" if shared else "needs value and may set"
        allowed = sorted(allowed - {"value"})
        raise where.error(
            f'reference."{key}" {need} {", ".join(allowed)}; got keys {sorted(ref)}.', key
        )
    kinds = {name: kind for name, (kind, _) in REFERENCE_BUDGET.items()}
    kinds.update(value=(int, float), quick_value=(int, float), quick_steps=int,
                 source=str, quick_source=str, metric=str)  # fmt: skip
    for field, value in ref.items():
        _expect(where, value, kinds[field], f'reference."{key}".{field}', key)


def merged_references(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The file's references, each with the shared ``[reference."*"]`` fields under its own."""
    refs = dict(raw.get("reference", {}))
    shared = refs.pop(SHARED_REFERENCE, {})
    return {key: {**shared, **ref} for key, ref in refs.items()}


ASSET_MAKE_KEYS = {"make", "seed", "episodes", "steps", "noise"}


def _check_assets(raw: dict[str, Any], where: _Where) -> None:
    """[assets."<env>"]: listed envs; each value a path, "make:RECIPE" or a recipe table."""
    for env, table in raw.get("assets", {}).items():
        if env not in raw["environments"]:
            raise where.error(f'[assets."{env}"] names an environment not in environments.', env)
        _expect(where, table, dict, f'assets."{env}"', env)
        for name, value in table.items():
            if isinstance(value, dict):
                extra = set(value) - ASSET_MAKE_KEYS
                if "make" not in value or extra:
                    raise where.error(
                        f'assets."{env}".{name}: a recipe table needs make = "RECIPE" and may '
                        f"set {', '.join(sorted(ASSET_MAKE_KEYS - {'make'}))}; got {sorted(value)}.",
                        name,
                    )
            elif not isinstance(value, str) or not value:
                raise where.error(
                    f'assets."{env}".{name} must be a path, "make:RECIPE" or a recipe table, '
                    f"got {value!r}.",
                    name,
                )


def _asset_path(value: Any) -> str:
    """The file of one [assets] value, building a recipe into the asset cache if needed."""
    from rlx.data import recipes

    if isinstance(value, dict):
        opts = {k: v for k, v in value.items() if k != "make"}
        return str(recipes.cached(value["make"], recipes.Options(**opts)))
    return str(recipes.resolve_source(value))


def _cell_assets(raw: dict[str, Any], algo: str, env: str) -> dict[str, str]:
    """The assets of one cell: those of its env's [assets] that its algorithm reads."""
    wanted = algorithm.get(algo).assets
    table = raw.get("assets", {}).get(env, {})
    return {name: _asset_path(value) for name, value in table.items() if name in wanted}


def _metric_list(where: _Where, value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise where.error(
            f"{what} must be a non-empty list of metric names, got {value!r}.", "metrics"
        )
    return tuple(value)


def _table_and_plot(raw: dict[str, Any], where: _Where) -> dict[str, Any]:
    """[table] metrics, [plot] metrics and the optional budget marker."""
    for section, allowed in (
        ("table", {"metrics"}),
        ("plot", {"metric", "metrics", "mark_fraction", "mark_label", "binned"}),
    ):
        for key in raw.get(section, {}):
            if key not in allowed:
                raise where.error(
                    f"unknown key {key!r} in [{section}]; allowed: {', '.join(sorted(allowed))}.",
                    key,
                )
    table = _metric_list(
        where, raw.get("table", {}).get("metrics", ["eval/return"]), "[table] metrics"
    )
    plot_raw = raw.get("plot", {})
    metric = plot_raw.get("metric", table[0])
    _expect(where, metric, str, "[plot] metric", "metric")
    plot = _metric_list(where, plot_raw.get("metrics", [metric]), "[plot] metrics")
    mark = None
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
        mark = {"fraction": float(frac), "label": label}
    binned = ()
    if "binned" in plot_raw:
        binned = _metric_list(where, plot_raw["binned"], "[plot] binned")
    return {"table_metrics": table, "plot_metrics": plot, "plot_mark": mark, "plot_binned": binned}


def _typed(where: _Where, algo: str, values: dict[str, Any], ctx: str) -> dict[str, Any]:
    """One layer of overrides checked and converted by `rlx.spec.resolve`, key by key, so an
    error names the key's line."""
    out = {}
    for key, value in values.items():
        try:
            out.update(spec.resolve(algorithm.get(algo), {key: value}).overrides)
        except RlxError as err:
            raise where.error(f"{ctx}: {err}", key) from None
    return out


def _grid(where: _Where, algo: str, raw: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for key, values in raw.get("grid", {}).get(algo, {}).items():
        try:
            out.update(spec.resolve(algorithm.get(algo), grid={key: values}).grid)
        except RlxError as err:
            raise where.error(f"grid.{algo}.{key}: {err}", key) from None
    return out


def _quick_layer(raw: dict[str, Any], algo: str, where: _Where) -> dict[str, Any]:
    """The --quick overrides that apply to `algo`: the [quick] keys it has, then
    quick_total_steps, then its own ``[quick.<algo>]`` table (the most specific wins)."""
    quick = dict(raw.get("quick", {}))
    own = {k: quick.pop(k) for k in list(quick) if isinstance(quick[k], dict)}
    for name in own:
        if name not in raw["algorithms"]:
            raise where.error(str(unknown("[quick.<algo>] table", name, raw["algorithms"])), name)
    allowed = {k for a in raw["algorithms"] for k in cfg.fields(algorithm.get(a).Config)}
    for key in quick:
        if key not in allowed:
            raise where.error(str(unknown("[quick] setting", key, allowed)), key)
    fields = cfg.fields(algorithm.get(algo).Config)
    layer = _typed(where, algo, {k: v for k, v in quick.items() if k in fields}, "quick")
    if "quick_total_steps" in raw:
        layer["total_steps"] = raw["quick_total_steps"]
    layer.update(_typed(where, algo, own.get(algo, {}), f"quick.{algo}"))
    return layer


def _cell_plan(raw: dict[str, Any], algo: str, env: str, quick: bool, where: _Where):
    """The validated plan of one cell, its overrides layered as `rlx.spec.layer` documents."""
    key = f"{algo}/{env}"
    base = {"total_steps": raw["total_steps"]}
    settings = {
        **base,
        **_typed(where, algo, raw.get("settings", {}).get(algo, {}), f"settings.{algo}"),
    }
    cell = _typed(where, algo, raw.get("cell", {}).get(key, {}), f'cell."{key}"')
    overrides = spec.layer(settings, cell, _quick_layer(raw, algo, where) if quick else None)
    grid = _grid(where, algo, raw)
    try:
        return runner.plan(
            algo, env, seeds=raw["seeds"], overrides=overrides, grid=grid,
            num_evals=raw.get("num_evals", 10), eval_episodes=raw.get("eval_episodes"),
            env_kwargs=dict(raw.get("environment", {}).get(env, {})),
            assets=_cell_assets(raw, algo, env),
        )  # fmt: skip
    except RlxError as err:
        raise _layered_error(where, raw, algo, key, quick, err) from None


def _origins(raw: dict[str, Any], algo: str, key: str, quick: bool) -> dict[str, tuple[str, Any]]:
    """Which layer of the file set each config field of a cell: field -> (label, the table to
    find its line in, None for the top level)."""
    out: dict[str, tuple[str, Any]] = {"total_steps": ("total_steps", None)}
    layers = [(f"[settings.{algo}]", f"settings.{algo}", raw.get("settings", {}).get(algo, {})),
              (f'[cell."{key}"]', f'cell."{key}"', raw.get("cell", {}).get(key, {}))]  # fmt: skip
    if quick:
        shared = {k: v for k, v in raw.get("quick", {}).items() if not isinstance(v, dict)}
        layers.append(("[quick]", "quick", shared))
        if "quick_total_steps" in raw:
            layers.append(("quick_total_steps", None, {"total_steps": None}))
        layers.append((f"[quick.{algo}]", f"quick.{algo}", raw.get("quick", {}).get(algo, {})))
    for label, table, values in layers:
        out.update({name: (label, table) for name in values})
    return out


def _layered_error(
    where: _Where, raw: dict[str, Any], algo: str, key: str, quick: bool, err: RlxError
) -> RlxError:
    """A cell's plan error with the layer (and line) that set each config field it names, e.g.
    ``(policy_frequency: td3's default; num_envs: [settings.td3] line 19)``, located at the
    first of those lines."""
    origins = _origins(raw, algo, key, quick)
    names = [f for f in cfg.fields(algorithm.get_algorithm(algo).Config)
             if re.search(rf"\b{re.escape(f)}\b", str(err))]  # fmt: skip
    notes, lines = [], []
    for name in names:
        label, table = origins.get(name, (f"{algo}'s default", None))
        n = where.key_line(table, "quick_total_steps" if label == "quick_total_steps" else name)
        n = n if name in origins else None
        lines += [n] if n else []
        notes.append(f"{name}: {label}" + (f" line {n}" if n else ""))
    suffix = f" (set by: {'; '.join(notes)})" if notes else ""
    n = lines[0] if lines else where.line("algorithms")
    return RlxError(f"{where.path}{f':{n}' if n else ''}: cell {key}: {err}{suffix}")


def load(path: Path | str, quick: bool = False) -> Sweep:
    """Parses and validates a sweep file; raises RlxError naming the file, line and key."""
    raw, where = read_toml(path)
    _check_top(raw, where)
    _check_sections(raw, where)
    shown = _table_and_plot(raw, where)
    for algo in raw["algorithms"]:  # every layer is checked, with or without --quick
        _quick_layer(raw, algo, where)
    cells = tuple(
        Cell(algo, env, _cell_plan(raw, algo, env, quick, where))
        for algo in raw["algorithms"]
        for env in raw["environments"]
    )
    return Sweep(
        path=Path(path),
        name=raw["name"],
        description=raw.get("description", ""),
        cells=cells,
        references=merged_references(raw),
        final_evals=raw.get("final_evals", 1),
        table_metrics=shown["table_metrics"],
        plot_metric=shown["plot_metrics"][0],
        plot_metrics=shown["plot_metrics"],
        plot_mark=shown["plot_mark"],
        plot_binned=shown["plot_binned"],
        quick=quick,
        raw=raw,
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _meta_temp(path: Path) -> bool:
    """Whether `path` is a sweep.json being written (`prepare_dir`'s temporary file, unique
    per process: shards sharing `out` never write the same one)."""
    return files.is_temp(path, "sweep.json")


def prepare_dir(sweep: Sweep, out: Path, new: bool) -> Path:
    """Checks `out` belongs to this sweep's configuration (or is new); with `new`, moves a
    directory of another configuration aside (nothing is deleted). Returns `out`. A directory
    holding only another shard's sweep.json in the making counts as new."""
    meta_path = out / "sweep.json"
    meta = _read_json(meta_path)
    if out.exists() and any(not _meta_temp(p) for p in out.iterdir()):
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
        "final_evals": sweep.final_evals,
        "table_metrics": list(sweep.table_metrics),
        "plot_metric": sweep.plot_metric,
        "plot_metrics": list(sweep.plot_metrics),
        "plot_mark": sweep.plot_mark,
        "plot_binned": list(sweep.plot_binned),
        "file": sweep.raw,
    }
    files.write_text_atomic(meta_path, json.dumps(meta, indent=1))  # a per-process temp name
    return out


def _finished(cell: Cell, cell_dir: Path, started: dict[str, Any], accept: bool) -> bool:
    """True if `cell_dir` holds this cell's finished record (same plan hash). A record made by
    other code is refused unless `accept` (the table then names every revision)."""
    existing = _read_json(cell_dir / "record.json")
    if existing is None or existing.get("config_hash") != runner.plan_hash(cell.plan):
        return False
    made_by, now = code_identity(existing.get("provenance", {})), code_identity(started)
    if made_by != now and not accept:
        raise RlxError(
            f"cell {cell.key} in {str(cell_dir)!r} was made by code {made_by}, this is {now}; "
            "pass --accept-revision-change to keep it (the table will say so), or --new."
        )
    return True


def run_sweep(
    sweep: Sweep,
    out: Path,
    *,
    new: bool = False,
    progress: bool = True,
    runs_per_slice: int | None = None,
    tensorboard: bool = False,
    wandb: str | None = None,
    accept_revision_change: bool = False,
    keep_policies: bool = True,
    shard: Shard | None = None,
) -> list[Path]:
    """Runs every unfinished cell and returns the cell directories. Each cell trains into
    ``<out>/cells/<cell dir>/`` through `rlx.runner.session.train_to_dir` (so while it runs,
    ``<cell dir>.partial/`` holds its checkpoints, partial ``curves.csv`` and live logs, and an
    interrupted cell resumes from there); with `wandb` (a project) each cell is one wandb run.
    Finished cells with the same configuration hash and code are skipped. The provenance (code
    revision, command, versions) is read once, now, for every cell. With `keep_policies`, each
    run's final policy is exported as soon as its slice ends, to
    ``<out>/policies/<cell dir>/run-<i>/``. With `shard` (K of N) only the cells whose index is
    K modulo N run, so N processes (a SLURM job array) can share `out`."""
    from rlx import distributed
    from rlx.runner import session

    session.check_wandb(wandb)  # before the results directory is made
    started = provenance()
    primary = distributed.is_primary()  # with --distributed only process 0 writes
    if primary:
        prepare_dir(sweep, out, new)
    distributed.barrier("sweep directory prepared")
    done = []
    for cell in (shard or Shard(0, 1)).select(sweep.cells):
        cell_dir = out / "cells" / cell.dirname
        if _finished(cell, cell_dir, started, accept_revision_change):
            print(f"[sweep] {cell.key}: finished earlier, skipped")
            if primary:  # a process killed between writing the record and clearing up
                shutil.rmtree(session.partial_dir(cell_dir), ignore_errors=True)
            done.append(cell_dir)
            continue
        budget = cell.plan.base_config.total_steps
        print(
            f"[sweep] {cell.key}: {len(cell.plan.runs)} runs x {budget:,} {cell.plan.algorithm.unit.label}"
        )
        policies = out / "policies" / cell.dirname
        if primary and cell_dir.exists():  # not this cell's finished record: a leftover
            shutil.rmtree(cell_dir)
        distributed.barrier(f"cell {cell.key} cleared")
        session.train_to_dir(
            cell.plan, cell_dir, accept_revision_change=accept_revision_change,
            runs_per_slice=runs_per_slice, progress=progress, tensorboard=tensorboard,
            wandb=wandb, export=policies if keep_policies else None, started=started,
        )  # fmt: skip
        done.append(cell_dir)
    return done


def dry_run_text(
    sweep: Sweep,
    out: Path,
    *,
    runs_per_slice: int | None = None,
    accept_revision_change: bool = False,
    shard: Shard | None = None,
) -> str:
    """What ``rlx sweep --dry-run`` prints: for each cell (of `shard`), whether it is finished
    or where it would resume, its resolved plan, batch shape and memory estimate
    (`rlx.runner.describe.dry_run_text`). Reads `out`, writes nothing."""
    from rlx.runner import describe, session

    started = provenance()
    parts = [f"sweep {sweep.name} ({sweep.digest()}): {len(sweep.cells)} cells, results in {out}"]
    for cell in (shard or Shard(0, 1)).select(sweep.cells):
        cell_dir = out / "cells" / cell.dirname
        if _finished(cell, cell_dir, started, accept_revision_change):
            parts.append(f"[sweep] {cell.key}: finished earlier, would be skipped")
            continue
        meta = session.resume_point(cell.plan, cell_dir, started,
                                    accept_revision_change=accept_revision_change)  # fmt: skip
        resume = None if meta is None else (meta, session.partial_dir(cell_dir))
        text = describe.dry_run_text(cell.plan, runs_per_slice=runs_per_slice, out=cell_dir,
                                     resume=resume)  # fmt: skip
        parts.append(f"[sweep] {cell.key}:\n{text}")
    return "\n\n".join(parts)


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the cells whose position in the sweep is index modulo count."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with 0 <= K < N (e.g. ``$SLURM_ARRAY_TASK_ID/4``); raises RlxError."""
        k, sep, n = text.partition("/")
        try:
            shard = cls(int(k), int(n))
        except ValueError:
            shard = None
        if not sep or shard is None or not 0 <= shard.index < shard.count:
            raise RlxError(
                f"bad --shard {text!r}: expected K/N with integers 0 <= K < N, e.g. 0/4."
            )
        return shard

    def select(self, cells: tuple[Cell, ...]) -> list[Cell]:
        """This shard's cells, in sweep order."""
        return [c for i, c in enumerate(cells) if i % self.count == self.index]
