"""Plain-text descriptions of algorithms and run plans: what ``rlx list NAME`` and
``rlx train --dry-run`` print, callable from Python with the same arguments."""

from __future__ import annotations

from pathlib import Path


def value_text(value: object) -> str:
    """A config value as ``--set`` takes it (tuples as comma-separated ints)."""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table_lines(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    """`rows` as aligned text lines: every column padded to its widest cell, the last one free."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1]
        for r in rows
    ]


def bytes_text(n: float) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError


def describe_algorithm(algo) -> str:
    """Every config field of `algo` (an `Algorithm` record): default (the algorithm's own
    defaults applied), kind and docstring; and what the algorithm counts and reads."""
    from rlx import config as cfg

    config = algo.make_config()
    assets = ", ".join(
        f"{name} ({'required' if a.required else 'optional'})" for name, a in algo.assets.items()
    )
    rows = [("field", "default", "kind", "doc")]
    rows += [(name, value_text(getattr(config, name)), kind, doc)
             for name, kind, _, doc in cfg.describe(algo.Config)]  # fmt: skip
    return "\n".join([
        f"{algo.name}: {algo.description}",
        f"budget unit: {algo.unit.label} (total_steps counts them); assets: {assets or 'none'}",
        "config fields (--set NAME=VALUE; hparam fields can also be --grid'ded in one program, "
        "static fields fix the compiled program's shapes):",
        *table_lines(rows),
    ])  # fmt: skip


def position_text(rp, meta: dict) -> str:
    """Where the checkpoint `meta` (`rlx.logging.checkpoint_meta`) of plan `rp` stands:
    evaluation point, and slice when the batch runs in several."""
    pos = meta["position"]
    n_slices = -(-len(rp.runs) // pos["slice_size"])
    where = f"evaluation point {pos['chunk']} of {rp.num_evals}"
    return where + (f" of slice {pos['slice'] + 1} of {n_slices}" if n_slices > 1 else "")


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


def _config_lines(rp) -> list[str]:
    """The resolved config of plan `rp`: * marks a value off the algorithm's default."""
    from rlx import config as cfg

    algo, base = rp.algorithm, rp.base_config
    defaults = algo.make_config()
    rows = []
    for name, kind, _, _ in cfg.describe(algo.Config):
        if name in rp.grid:
            value = "[" + ", ".join(value_text(v) for v in rp.grid[name]) + "]"
        else:
            value = value_text(getattr(base, name))
        changed = name in rp.grid or getattr(base, name) != getattr(defaults, name)
        rows.append((("* " if changed else "  ") + name, value, kind))
    return table_lines(rows)


def _batch_lines(rp, runs_per_slice: int | None) -> list[str]:
    """The compiled batch's shape and its memory estimate."""
    import jax

    base, unit = rp.base_config, rp.algorithm.unit.label
    n_runs = len(rp.runs)
    devices = len(jax.devices())
    size = min(runs_per_slice or n_runs, n_runs)
    padded = size + (-size) % devices
    n_slices = -(-n_runs // size)
    shape = " x ".join(f"{f} {getattr(base, f)}" for f in ("num_envs", "unroll_length")
                       if hasattr(base, f))  # fmt: skip
    per_run, data = state_bytes(rp)
    return [
        f"batch: {padded} runs per compiled program ({n_slices} slice{'s' * (n_slices > 1)}"
        f"{', padded to a multiple of ' + str(devices) + ' devices' if padded != size else ''})"
        f" x {base.steps_per_update:,} {unit} per update" + (f" ({shape})" if shape else ""),
        f"memory: training state {bytes_text(per_run)} per run; {padded} runs at once = "
        f"{bytes_text(per_run * padded)}"
        + (f" (all {n_runs} runs: {bytes_text(per_run * n_runs)})" if n_slices > 1 else "")
        + (f", plus assets {bytes_text(data)} (one copy)" if data else "")
        + " (jax.eval_shape of init, nothing compiled: the chunk program's temporaries are not "
        "included; without --runs-per-slice a device short of memory gets smaller slices)",
    ]


def dry_run_text(
    rp,
    *,
    runs_per_slice: int | None = None,
    out: str | Path | None = None,
    resume: tuple[dict, Path] | None = None,
) -> str:
    """What ``rlx train --dry-run`` prints for plan `rp`: the resolved config, the plan, the
    batch's shape and a memory estimate. `resume` is the checkpoint meta and the partial
    directory a run would resume from (None: a fresh start); `out` the run directory."""
    from rlx.runner import plan_hash

    base, unit = rp.base_config, rp.algorithm.unit.label
    n_points, n_runs = len(rp.points), len(rp.runs)
    lines = [f"plan {plan_hash(rp)}: {rp.algo} on {rp.env}"]
    if rp.env_kwargs:
        lines.append("env keywords: " + ", ".join(f"{k}={v}" for k, v in rp.env_kwargs.items()))
    for name, a in rp.assets.items():
        lines.append(f"asset {name}: {a.path} (sha256 {a.sha256[:16]})")
    lines.append("config (* differs from the algorithm's default; [..] a grid):")
    lines += _config_lines(rp)
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
    lines += _batch_lines(rp, runs_per_slice)
    if resume is not None:
        meta, partial = resume
        lines.append(f"resume: from {partial} ({position_text(rp, meta)})")
    if out is not None:
        lines.append(f"out: {out} (nothing written: --dry-run)")
    return "\n".join(lines)
