"""Gradient-variance diagnostic for policy-gradient algorithms: `rlx gradvar FILE`.

An algorithm takes part by providing ``gradient_estimates(env, state, key) -> {variant:
estimate}`` (one fresh on-policy batch from independent start states, every variant on the
same trajectories; an estimate has a flat ``gradient`` and the baseline's ``unexplained``
fraction of the return's variance, 1 - R^2) and optionally
``fit_baselines(env, state) -> state`` (fit its critics at fixed policy parameters),
``stagger(env, state, key) -> state`` (put the envs' episodes out of phase, done once before
the fits: envs reset together run in step when episodes have one length, so every batch would
cover one window of episode steps) and
``decomposition(env, state, key, num_actions, num_futures, horizon) -> {variant: terms}``
(re-simulation from saved env states). `rlx.algos.factorized.factorized_pg` provides all four
(written in `rlx.algos.factorized.variance`).

At fixed policy parameters theta (after ``train_updates`` updates of the algorithm and
``fit_updates`` critic fits), with B independent batches g_1..g_B of one variant::

    trace of the covariance   tr Cov = 1/(B-1) sum_b |g_b - g_mean|^2
    cosine to the large batch  mean_b cos(g_b, mean of the other B-1 batches)
    relative variance          tr Cov / |g_mean|^2

The study is the ``[variance]`` section of a sweep file (`load`); its results (record JSON, a
Markdown table, a log-log plot of tr Cov against the action dimension) go to
``results/<name>/variance/``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlx import algorithm, envs, files, runner, sweep
from rlx import spec as rlx_spec
from rlx.errors import RlxError, unknown
from rlx.provenance import describe_hardware, provenance

VARIANCE_KEYS = {
    "algorithm": "algorithm name (default factorized_pg)",
    "environments": "list of environment names",
    "seed": "seed of the measured run (int)",
    "train_updates": "updates of the algorithm before the measurement (int >= 0)",
    "fit_updates": "critic-fitting updates at fixed theta per fit round (int >= 0)",
    "fit_rounds": "most rounds of fit_updates fits (int >= 1); fitting stops earlier once "
    "every baseline's 1 - R^2 moved by less than fit_tolerance between rounds",
    "fit_tolerance": "relative change of 1 - R^2 between rounds taken as converged (float > 0)",
    "fit_settings": "[variance.fit_settings] config overrides during the fits (e.g. a step "
    "size, anneal_lr = false); they may not change num_envs or unroll_length",
    "batches": "independent batches B (int >= 2)",
    "num_actions": "decomposition: actions per state (int >= 2, 0 to skip the decomposition)",
    "num_futures": "decomposition: futures per state-action (int >= 2)",
    "horizon": "decomposition: steps of each future (int >= 1)",
    "settings": "[variance.settings] config overrides",
    "quick": "[variance.quick] overrides under --quick (batches, settings, ...)",
}


def batch_statistics(grads: np.ndarray) -> dict[str, float]:
    """tr Cov, |mean|^2, relative variance and mean leave-one-out cosine of B gradients [B, P]."""
    grads = np.asarray(grads, np.float64)
    b = grads.shape[0]
    if b < 2:
        raise RlxError(f"need at least 2 gradient batches for a variance, got {b}.")
    mean = grads.mean(0)
    trace = float(np.sum((grads - mean) ** 2) / (b - 1))
    others = (b * mean - grads) / (b - 1)
    cos = np.sum(grads * others, 1) / (
        np.linalg.norm(grads, axis=1) * np.linalg.norm(others, axis=1) + 1e-30
    )
    sq = float(np.sum(mean**2))
    return {
        "trace_cov": trace,
        "mean_sq_norm": sq,
        "relative_variance": trace / sq if sq > 0 else math.inf,
        "cosine_to_rest": float(cos.mean()),
    }


def _layered(section: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The [variance] keys with --quick's on top: ``[variance] < [variance.quick]`` key by key,
    and ``[variance.settings] < [variance.quick.settings]`` setting by setting (fit_settings
    likewise)."""
    base = {k: v for k, v in section.items() if k != "quick"}
    if not quick:
        return base
    over = section.get("quick", {})
    tables = {t: {**base.get(t, {}), **over.get(t, {})} for t in ("settings", "fit_settings")}
    return {**base, **over, **tables}


def load(path: Path | str, quick: bool = False) -> dict[str, Any]:
    """The validated ``[variance]`` section of a sweep file (with its name and env keywords)."""
    path = Path(path)
    raw, where = sweep.read_toml(path)  # the one reader of sweep files (errors name the line)
    section = raw.get("variance")
    if not isinstance(section, dict):
        raise RlxError(f"{path}: no [variance] section; `rlx gradvar` needs one.")
    quick_keys = section.get("quick", {})
    if not isinstance(quick_keys, dict):
        raise where.error("[variance.quick] must be a table.", "quick")
    for key in list(section) + [k for k in quick_keys if k != "quick"]:
        if key not in VARIANCE_KEYS:
            raise where.error(str(unknown("[variance] key", key, VARIANCE_KEYS)), key)
    if "quick" in quick_keys:
        raise where.error("[variance.quick] cannot hold another quick table.", "quick")
    spec = _layered(section, quick)
    out = {
        "name": raw.get("name", path.stem),
        "file": str(path),
        "quick": quick,
        "algorithm": spec.get("algorithm", "factorized_pg"),
        "environments": spec.get("environments"),
        "seed": spec.get("seed", 0),
        "train_updates": spec.get("train_updates", 0),
        "fit_updates": spec.get("fit_updates", 0),
        "fit_rounds": spec.get("fit_rounds", 1),
        "fit_tolerance": spec.get("fit_tolerance", 0.1),
        "batches": spec.get("batches", 30),
        "num_actions": spec.get("num_actions", 0),
        "num_futures": spec.get("num_futures", 4),
        "horizon": spec.get("horizon", 10),
        "settings": spec.get("settings", {}),
        "fit_settings": spec.get("fit_settings", {}),
        "env_kwargs": raw.get("environment", {}),
    }
    module = algorithm.get(out["algorithm"])
    if "gradient_estimates" not in module.extras:
        raise RlxError(
            f"{path}: algorithm {out['algorithm']!r} provides no gradient_estimates; "
            "the diagnostic needs it."
        )
    for table in ("settings", "fit_settings"):
        try:  # the one override path: keys, types, budgets
            out[table] = rlx_spec.resolve(module, out[table]).overrides
        except RlxError as err:
            raise where.error(f"[variance] {table}: {err}", table) from None
    for fixed in ("num_envs", "unroll_length", "total_steps"):
        if fixed in out["fit_settings"]:
            raise where.error(
                f"[variance] fit_settings.{fixed} is not allowed: the fits continue the "
                "trained state's rollout (and the budget is the study's); remove it.",
                fixed,
            )
    if "total_steps" in out["settings"]:
        raise where.error(
            "[variance] settings.total_steps would be ignored: the study's budget is "
            "train_updates + fit_updates updates; remove it.",
            "total_steps",
        )
    _check_study(out, path)
    return out


def _check_study(out: dict[str, Any], path: Path) -> None:
    """Environments named and known; counts integers within their ranges."""
    names = out["environments"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise RlxError(f"{path}: [variance] environments must be a non-empty list of names.")
    for name in names:
        envs.check_name(name)
    tol = out["fit_tolerance"]
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not tol > 0:
        raise RlxError(f"{path}: [variance] fit_tolerance must be a number > 0, got {tol!r}.")
    minimum = {"seed": 0, "train_updates": 0, "fit_updates": 0, "fit_rounds": 1, "batches": 2,
               "num_actions": 0, "num_futures": 2, "horizon": 1}  # fmt: skip
    for key, low in minimum.items():
        value = out[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise RlxError(
                f"{path}: [variance] {key} must be an integer >= {low} "
                f"({VARIANCE_KEYS[key]}), got {value!r}."
            )
    if out["num_actions"] == 1:
        raise RlxError(f"{path}: [variance] num_actions must be 0 (skip) or >= 2, got 1.")


def _plan(spec: dict[str, Any], env_name: str) -> runner.RunPlan:
    """A validated one-run plan (catches bad settings and env/algorithm mismatches)."""
    module = algorithm.get(spec["algorithm"])
    base = module.make_config(**spec["settings"])
    updates = max(1, spec["train_updates"] + spec["fit_updates"] * spec["fit_rounds"])
    return runner.plan(
        spec["algorithm"], env_name, seeds=[spec["seed"]],
        overrides={**spec["settings"], "total_steps": updates * base.steps_per_update},
        num_evals=1, env_kwargs=dict(spec["env_kwargs"].get(env_name, {})),
    )  # fmt: skip


def converged(before: dict[str, float], after: dict[str, float], tol: float, variants=None) -> bool:
    """True when each of `variants`' (default: every) baseline's 1 - R^2 moved by at most
    ``tol`` relative to its previous value (with an absolute floor of 0.01, so exact
    baselines near 0 count as settled)."""
    names = after if variants is None else [v for v in after if v in variants]
    return all(abs(after[v] - before[v]) <= tol * max(before[v], 0.01) for v in names)


def fit(spec: dict[str, Any], env, module, base_config, state, estimate, key: jax.Array):
    """The critics fitted at fixed theta in rounds of ``fit_updates`` updates (with the
    ``fit_settings`` config) until every baseline's 1 - R^2, measured on two fresh batches
    after each round, moved by less than ``fit_tolerance`` between rounds, or
    ``fit_rounds`` rounds. Returns (state, the fit's history: 1 - R^2 per variant per
    round, rounds run, converged). Only the baselines the algorithm fits by gradient steps
    (its extras' ``baselines_fitted_by_gradient``, default all) decide convergence: a
    closed-form baseline refitted to each new batch moves with the batch, not with the fit."""
    from rlx import config as cfg

    trained = module.extras.get("baselines_fitted_by_gradient")
    history: dict[str, Any] = {"rounds": 0, "converged": None, "unexplained": {}}
    step = module.extras.get("fit_baselines")
    if not spec["fit_updates"] or step is None:
        return state, history
    fit_config = dataclasses.replace(base_config, **spec["fit_settings"])
    fit_config.validate()
    state = state.replace(config=cfg.as_leaves(fit_config))
    one_round = jax.jit(
        lambda s: jax.lax.fori_loop(0, spec["fit_updates"], lambda _, x: step(env, x), s)
    )
    previous = None
    for r in range(spec["fit_rounds"]):
        state = one_round(state)
        k0, k1 = jax.random.split(jax.random.fold_in(key, r))
        pair = [jax.device_get(estimate(state, k)) for k in (k0, k1)]
        now = {v: float(np.mean([p[v].unexplained for p in pair])) for v in pair[0]}
        for v, u in now.items():
            history["unexplained"].setdefault(v, []).append(u)
        history.setdefault("decided_by", [v for v in now if trained is None or v in trained])
        history["rounds"] = r + 1
        if previous is not None and converged(previous, now, spec["fit_tolerance"], trained):
            history["converged"] = True
            return state, history
        previous = now
    history["converged"] = False if spec["fit_rounds"] > 1 else None
    return state, history


def measure(spec: dict[str, Any], env_name: str) -> dict[str, Any]:
    """Trains, fits the critics, then measures every variant's gradient variance on one env."""
    from rlx import config as cfg

    rp = _plan(spec, env_name)
    module = rp.algorithm
    env = rp.make_env()
    config = cfg.as_leaves(rp.base_config)
    key = jax.random.PRNGKey(spec["seed"])
    k_init, k_grad, k_dec, k_fit, k_stagger = jax.random.split(key, 5)
    state = jax.jit(lambda k: module.init(k, env, config, None))(k_init)
    estimate = jax.jit(lambda s, k: module.extras["gradient_estimates"](env, s, k))

    t0 = time.perf_counter()
    if spec["train_updates"]:
        train = lambda _, s: module.update(env, s, None)[0]  # noqa: E731
        state = jax.jit(lambda s: jax.lax.fori_loop(0, spec["train_updates"], train, s))(state)
    if "stagger" in module.extras:  # episodes out of phase before the fits and batches
        state = jax.jit(lambda s, k: module.extras["stagger"](env, s, k))(state, k_stagger)
    state, fit_history = fit(spec, env, module, rp.base_config, state, estimate, k_fit)
    jax.block_until_ready(state)
    prepare_s = time.perf_counter() - t0

    keys = jax.random.split(k_grad, spec["batches"])
    compiled = estimate.lower(state, keys[0]).compile()
    t0 = time.perf_counter()
    per_batch = [jax.device_get(compiled(state, k)) for k in keys]
    estimate_s = (time.perf_counter() - t0) / spec["batches"]
    variants = list(per_batch[0])
    stats = {}
    for v in variants:
        stats[v] = batch_statistics(np.stack([g[v].gradient for g in per_batch]))
        stats[v]["unexplained"] = float(np.mean([g[v].unexplained for g in per_batch]))
    decomposition = None
    if spec["num_actions"] and "decomposition" in module.extras:
        terms = jax.jit(
            lambda k: module.extras["decomposition"](
                env, state, k, spec["num_actions"], spec["num_futures"], spec["horizon"]
            )
        )(k_dec)
        decomposition = {v: {k: float(x) for k, x in t.items()} for v, t in terms.items()}
    return {
        "env": env_name,
        "action_size": int(env.action_size),
        "batch_size": int(rp.base_config.steps_per_update),
        "num_params": int(per_batch[0][variants[0]].gradient.size),
        "config": cfg.to_dict(rp.base_config),
        "fit": fit_history,
        "variants": stats,
        "decomposition": decomposition,
        "seconds": {"prepare": prepare_s, "estimate_all_variants": estimate_s},
    }


def run(spec: dict[str, Any], out: Path | str | None = None) -> Path:
    """``rlx gradvar``: measures every environment of `spec` (`load`) and writes
    variance.json, variance.md and the plot to `out` (default results/<name>/variance), which
    it returns."""
    out = Path(out) if out is not None else Path("results") / spec["name"] / "variance"
    started = provenance()  # the code the measurements ran, not what is checked out later
    results = []
    for name in spec["environments"]:
        print(f"[gradvar] {name}", flush=True)
        results.append(measure(spec, name))
    record = {
        "kind": "rlx.bench.gradvar",
        "spec": spec,
        "results": results,
        "provenance": started,
    }
    files.write_text_atomic(out / "variance.json", json.dumps(record, indent=1, default=float))
    files.write_text_atomic(out / "variance.md", markdown(record))
    plot(record, out / "variance_vs_dimension.png")
    return out


def _fit_protocol(spec: dict[str, Any]) -> str:
    settings = ", ".join(f"{k} = {v}" for k, v in spec["fit_settings"].items())
    text = f"critic fits at fixed theta in rounds of {spec['fit_updates']} updates"
    text += f" ({settings})" if settings else ""
    if spec["fit_rounds"] > 1:
        text += (
            f" until every baseline fitted by gradient steps moved its 1 - R² by less than "
            f"{spec['fit_tolerance']:.0%} "
            f"between rounds (at most {spec['fit_rounds']} rounds)"
        )
    return text


def _fit_summary(result: dict[str, Any]) -> str:
    fit = result.get("fit") or {}
    if not fit.get("rounds"):
        return f"{result['env']} none"
    verdict = {True: "converged", False: "not converged", None: "one round"}[fit["converged"]]
    trained = fit.get("decided_by") or list(fit["unexplained"])
    worst = max(fit["unexplained"][v][-1] for v in trained)
    return f"{result['env']} {fit['rounds']} ({verdict}; {worst:.3g})"


def markdown(record: dict[str, Any]) -> str:
    """The variance table: per env and variant, tr Cov, its ratio to the state baseline's,
    the cosine to the other batches' mean and the decomposition terms."""
    spec, prov = record["spec"], record["provenance"]
    v = prov["versions"]
    lines = [
        f"# Policy-gradient variance: {spec['name']}",
        "",
        f"- hardware: {describe_hardware(prov['hardware'])}",
        f"- versions: python {v['python']}, jax {v['jax']}, flax {v['flax']}, brax {v['brax']}",
        f"- git {prov['git']}, {prov['date']}; command: `rlx gradvar {spec['file']}"
        f"{' --quick' if spec['quick'] else ''}`",
        f"- protocol: {spec['train_updates']} training updates of {spec['algorithm']}, the "
        "envs' episodes then put out of phase (each env advanced by its own random number of "
        f"steps, where the algorithm can), then {_fit_protocol(spec)}; {spec['batches']} "
        "independent "
        "batches per variant, each from independent start states (a whole episode's length "
        "of policy steps after the last), all variants on the same trajectories",
        "",
        "| env | m | batch | variant | 1 - R² | tr Cov | vs state | cos to rest | state "
        "| action | trajectory |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in record["results"]:
        ref = res["variants"].get("state", {}).get("trace_cov")
        dec = res["decomposition"] or {}
        for name, s in res["variants"].items():
            terms = dec.get(name, {})
            cells = [f"{terms[k]:.3g}" if k in terms else "" for k in ("state", "action",
                                                                        "trajectory")]  # fmt: skip
            ratio = f"{s['trace_cov'] / ref:.3f}" if ref else ""
            lines.append(
                f"| {res['env']} | {res['action_size']} | {res['batch_size']} | {name} "
                f"| {s['unexplained']:.3f} | {s['trace_cov']:.4g} | {ratio} | {s['cosine_to_rest']:.3f} | "
                + " | ".join(cells)
                + " |"
            )
    lines += [
        "",
        "1 - R²: the baseline's unexplained fraction of the return's variance on the "
        "measured batches, mean_{n,i} (G_n - b_i)^2 / Var(G) (the critics' fit error). "
        "tr Cov: trace of the covariance of the batch gradient over the independent batches; "
        "vs state: its ratio to the state-only baseline's (below 1: less variance); cos to "
        "rest: mean cosine between one batch's gradient and the mean of the others. "
        "state / action / trajectory: Tucker et al.'s split of the single-sample gradient "
        "variance by re-simulation (trajectory is the same for every baseline).",
        "",
        "Critic fits (rounds run; the largest 1 - R² of the baselines fitted by gradient steps "
        "in the last round): " + ", ".join(_fit_summary(r) for r in record["results"]) + ".",
        "",
        "Seconds per batch (all variants, after compiling): "
        + ", ".join(
            f"{r['env']} {r['seconds']['estimate_all_variants']:.2f}" for r in record["results"]
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


def plot(record: dict[str, Any], out: Path) -> Path | None:
    """Log-log tr Cov against the action dimension, one line per variant (envs that share a
    name prefix before ``_m``, e.g. target_matching_m6..m2000)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series: dict[str, list[tuple[int, float]]] = {}
    for res in record["results"]:
        if "_m" not in res["env"]:
            continue
        for name, s in res["variants"].items():
            series.setdefault(name, []).append((res["action_size"], s["trace_cov"]))
    if not series:
        return None
    fig = Figure(figsize=(5.0, 3.8), layout="constrained")
    ax = fig.subplots()
    for name, points in series.items():
        points.sort()
        ax.plot(*zip(*points, strict=True), marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("action dimension m")
    ax.set_ylabel("trace of gradient covariance")
    ax.set_title("target matching: gradient variance vs m")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    FigureCanvasAgg(fig)
    fig.savefig(out, dpi=120, format="png")
    return out
