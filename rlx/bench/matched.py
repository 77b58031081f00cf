"""`rlx bench --matched`: rlx PPO and Brax's own PPO with identical settings, side by side.

One settings dict per case (`MATCHED`) produces both rlx's PPO overrides (`rlx_overrides`) and
Brax's ``ppo.train`` keyword arguments and network options (`brax_kwargs`), so the two cannot
drift apart: same hidden widths and activation, a state-independent-std Gaussian on both sides
(Brax ``distribution_type="normal"``, ``noise_std_type="log"``, initial std 1), same batch shape
(Brax's ``batch_size * num_minibatches`` = ``num_envs``, so one Brax training step is one rlx
update), epochs, minibatches, constant learning rate and observation normalisation. What still differs is stated in `DIFFERENCES`.

Rows, for each seed count N: rlx with N seeds in one program; Brax with one seed per process
(N sequential runs take N times as long, so their rate is this row's); Brax with N times the
envs in one process (the same env steps per update as the N-seed program, but one learner).
Each row runs `reps` times; rates are mean ± std over the repetitions. Compile seconds are
measured the same way on both sides: the union of jax's trace, lower and XLA-compile time spans
(``jax.monitoring``) during the run. A fresh persistent compilation cache is shared by both, so
the first repetition of a row compiles cold and the later ones load from the cache (warm).
Each row's rate is also set against the raw env's on its own stack (`raw_rates`): the same
training-wrapped env under random actions, compiled by rlx's jax for rlx rows and by the peer
venv's (older) jax for Brax rows, since the two compile the same MJX physics to code of
different speed.

`breakdown` measures, for each seed count, where one rlx update's time goes at the matched
shape: the raw environment (at the rate of long scans, and in the rollout's own program shape),
the policy rollout, and the learner's optimisation steps, each compiled alone and mapped over
the seeds as in training; within the learner, the optimiser alone (clip + Adam + parameter
step). For one seed also, from a profiler trace, the share of kernel time in matrix products
(`rlx.bench.kernel_profile`), and the learner's arithmetic rate (XLA's flop count over its
time) against a large matmul's.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import jax
import numpy as np

from rlx import runner

COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)

# The shape of issue 12: ant on MJX, 128 envs x 5 steps, 32 minibatches x 4 epochs, 256-256
# tanh networks, constant learning rate. Pendulum: rlx's PPO defaults with a constant rate.
MATCHED: dict[str, dict[str, Any]] = {
    "brax:ant": {
        "backend": "mjx",
        "total_steps": 327_680,
        "quick_steps": 25_600,
        "eval_episodes": 4,
        "settings": dict(
            num_envs=128, unroll_length=5, num_minibatches=32, num_epochs=4,
            hidden=(256, 256), activation="tanh", learning_rate=3e-4, gamma=0.97,
            gae_lambda=0.95, clip_eps=0.3, entropy_coef=1e-2, reward_scaling=10.0,
            max_grad_norm=1.0, episode_length=1000,
        ),
    },
    "pendulum_swingup": {
        "backend": None,
        "total_steps": 300_000,
        "quick_steps": 300_000,
        "eval_episodes": 16,
        "settings": dict(
            num_envs=100, unroll_length=30, num_minibatches=5, num_epochs=10,
            hidden=(64, 64), activation="tanh", learning_rate=1e-3, gamma=0.99,
            gae_lambda=0.95, clip_eps=0.2, entropy_coef=0.0, reward_scaling=0.1,
            max_grad_norm=0.5, episode_length=200,
        ),
    },
}  # fmt: skip

DIFFERENCES = (
    "Time-outs: rlx bootstraps from the final observation; Brax 0.14.2 masks the TD error "
    "of truncated steps (its bootstrap_on_timeout needs a time_out field its own env "
    "wrappers do not set). Brax computes GAE inside each minibatch's loss with the current value parameters and "
    "shuffles whole env trajectories into minibatches; rlx computes GAE once per update and "
    "shuffles single steps. Brax sends the unclipped Gaussian sample to the env (which clips "
    "to its control range); rlx clips to [-1, 1]. Initialisers differ (Brax lecun-uniform, "
    "rlx flax's lecun-normal with a scaled output layer)."
)


def rlx_overrides(settings: dict[str, Any], total_steps: int) -> dict[str, Any]:
    """rlx PPO's config overrides for a matched settings dict."""
    s = dict(settings)
    hidden = tuple(s.pop("hidden"))
    return {
        **s, "total_steps": total_steps, "policy_hidden": hidden, "value_hidden": hidden,
        "anneal_lr": False, "normalize_observations": True, "clip_value": False,
        "value_coef": 0.5,
    }  # fmt: skip


def brax_kwargs(
    settings: dict[str, Any], total_steps: int, seed: int, eval_episodes: int, env_factor: int = 1
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``ppo.train`` keyword arguments, ``make_ppo_networks`` options) for a matched settings
    dict, with `env_factor` times the envs (and minibatch size) at the same env steps per env."""
    s = settings
    num_envs = s["num_envs"] * env_factor
    per_update = num_envs * s["unroll_length"]
    updates = total_steps * env_factor // per_update
    # Brax needs >= 3 training epochs for a steady-state rate: the fewest >= 5 dividing the
    # updates, so both learners get exactly the same budget.
    epochs = next((e for e in range(5, updates + 1) if updates % e == 0), updates)
    kwargs = dict(
        num_timesteps=updates * per_update, num_envs=num_envs,
        episode_length=s["episode_length"], unroll_length=s["unroll_length"],
        batch_size=num_envs // s["num_minibatches"], num_minibatches=s["num_minibatches"],
        num_updates_per_batch=s["num_epochs"], learning_rate=s["learning_rate"],
        entropy_cost=s["entropy_coef"], discounting=s["gamma"], gae_lambda=s["gae_lambda"],
        clipping_epsilon=s["clip_eps"], reward_scaling=s["reward_scaling"],
        max_grad_norm=s["max_grad_norm"], normalize_observations=True,
        normalize_advantage=True, vf_loss_coefficient=0.5,
        learning_rate_schedule=None, num_evals=epochs + 1, num_eval_envs=eval_episodes,
        deterministic_eval=True, seed=seed,
        policy_hidden_layer_sizes=list(s["hidden"]), value_hidden_layer_sizes=list(s["hidden"]),
    )  # fmt: skip
    network = dict(
        activation=s["activation"], distribution_type="normal", noise_std_type="log",
        init_noise_std=1.0,
    )  # fmt: skip
    return kwargs, network


class Spans:
    """Records jax's trace/lower/compile time spans (``jax.monitoring``); registered once."""

    spans: ClassVar[list[tuple[float, float]]] = []
    _registered: ClassVar[bool] = False

    @classmethod
    def register(cls) -> None:
        if not cls._registered:
            jax.monitoring.register_event_time_span_listener(cls._on_span)
            cls._registered = True

    @classmethod
    def _on_span(cls, event: str, start: float, end: float, **_) -> None:
        if event in COMPILE_EVENTS:
            cls.spans.append((start, end))

    @classmethod
    def seconds_since(cls, t0: float) -> float:
        """Seconds covered by the union of the spans that started after `t0`."""
        total, last = 0.0, -math.inf
        for a, b in sorted(s for s in cls.spans if s[0] >= t0):
            a = max(a, last)
            total += max(0.0, b - a)
            last = max(last, b)
        return total


def rlx_row(
    name: str, case: dict, seeds: list[int], total_steps: int, num_evals: int = 1
) -> dict[str, Any]:
    """One rlx run of `seeds` in one program: rate, compile seconds, untrained and final
    returns, and the evaluation curve of each seed (``curve_steps``, ``curves[seed]``)."""
    Spans.register()
    rp = runner.plan(
        "ppo", name, seeds=seeds, overrides=rlx_overrides(case["settings"], total_steps),
        num_evals=num_evals, eval_episodes=case["eval_episodes"],
        env_kwargs={"backend": case["backend"]} if case["backend"] else {},
    )  # fmt: skip
    t0 = time.time()
    rec = runner.run(rp, progress=False)
    return {
        "env_steps_per_s": rec["timing"]["env_steps_per_s"],
        "compile_s": Spans.seconds_since(t0),
        "returns": [r["final"]["eval/return"] for r in rec["runs"]],
        "initial_returns": [r["curve"]["eval/return"][0] for r in rec["runs"]],
        "curve_steps": [int(x) for x in rec["runs"][0]["curve"]["env_steps"]],
        "curves": [[float(x) for x in r["curve"]["eval/return"]] for r in rec["runs"]],
    }


def brax_row(
    name: str,
    case: dict,
    seed: int,
    total_steps: int,
    env_factor: int,
    num_evals: int | None = None,
) -> dict:
    """One Brax PPO run (its own process) with the matched settings; `num_evals` evaluation
    points (step 0 included) instead of `brax_kwargs`'s, when given."""
    from rlx.bench.peer import run_brax_ppo

    kwargs, network = brax_kwargs(
        case["settings"], total_steps, seed, case["eval_episodes"], env_factor
    )
    if num_evals is not None:
        kwargs["num_evals"] = num_evals
    out = run_brax_ppo(name, kwargs, backend=case["backend"], network=network)
    curve = out["eval_curve"]
    return {
        "env_steps_per_s": out["train_env_steps_per_s"] or math.nan,
        "compile_s": out["measured_compile_s"],
        "returns": [out["final_eval_return"]],
        "initial_returns": [curve[0][1] if curve else math.nan],
        "curve_steps": [int(x) for x, _ in curve],
        "curves": [[float(y) for _, y in curve]],
        "versions": out.get("versions"),
    }  # fmt: skip


def summarise(label: str, seeds: int, reps: list[dict]) -> dict[str, Any]:
    """Mean ± std of the rate over repetitions, cold (first) and warm (later) compile seconds,
    and the untrained policy's and the final returns (of the first repetition's seeds, or one
    per repetition for 1-seed rows run with different seeds)."""
    rates = [r["env_steps_per_s"] for r in reps]

    def pooled(key: str) -> list[float]:
        return [x for r in reps for x in r[key]] if seeds == 1 else reps[0][key]

    returns, initial = pooled("returns"), pooled("initial_returns")
    return {
        "row": label, "seeds": seeds, "reps": len(reps),
        "rate_mean": float(np.mean(rates)), "rate_std": float(np.std(rates)),
        "compile_cold_s": reps[0]["compile_s"],
        "compile_warm_s": float(np.mean([r["compile_s"] for r in reps[1:]])) if len(reps) > 1
        else math.nan,
        "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
        "returns": [float(x) for x in returns],
        "initial_mean": float(np.mean(initial)), "initial_std": float(np.std(initial)),
        "raw": reps,
    }  # fmt: skip


def run_case(
    name: str, seed_counts: list[int], reps: int, total_steps: int, peer: bool
) -> list[dict]:
    """Every row of one case (see the module docstring); each row also carries the raw env's
    rate with as many envs on its own stack (``raw_rate``, `raw_rates`)."""
    case = MATCHED[name]
    settings = case["settings"]
    rows = []
    for n in seed_counts:
        print(f"[bench matched] {name}: rlx, {n} seed(s) in one program x {reps}", flush=True)
        seeds = [[r] if n == 1 else list(range(n)) for r in range(reps)]
        ours = summarise(f"rlx PPO, {n} seed(s), one program", n,
                         [rlx_row(name, case, s, total_steps) for s in seeds])  # fmt: skip
        theirs = _peer_row(name, case, n, reps, total_steps) if peer else None
        raws = raw_rates(name, case["backend"], n * settings["num_envs"],
                         settings["episode_length"], peer)  # fmt: skip
        rows.append({**ours, "raw_rate": raws["rlx"]})
        if theirs is not None:
            rows.append({**theirs, "raw_rate": raws["peer"]})
    return rows


def raw_rates(
    name: str, backend: str | None, num_envs: int, episode_length: int, peer: bool
) -> dict[str, float]:
    """The raw env's rate (100-step random-action scans, median of 3) with `num_envs` envs on
    rlx's stack (``"rlx"``) and, with `peer`, on the peer venv's (``"peer"``): the same env
    code, compiled by each side's jax."""
    from rlx.bench.peer import peer_raw_env_rate
    from rlx.bench.throughput import raw_env_rate

    print(f"[bench matched] {name}: raw env, {num_envs} envs", flush=True)
    out = {"rlx": raw_env_rate(name, backend, num_envs, episode_length, 100, reps=3)}
    if peer:
        print(f"[bench matched] {name}: raw env on the peer's stack, {num_envs} envs", flush=True)
        out["peer"] = peer_raw_env_rate(name, backend, num_envs, episode_length, 100, reps=3)
    return {k: v["env_steps_per_s"] for k, v in out.items()}


def _peer_row(name: str, case: dict, n: int, reps: int, total_steps: int) -> dict:
    """Brax's row for seed count n: one seed per process (n = 1) or one seed with n x envs."""
    if n == 1:
        print(f"[bench matched] {name}: Brax, 1 seed per process x {reps}", flush=True)
        return summarise("Brax PPO, 1 seed per process (N sequential runs)", 1,
                         [brax_row(name, case, s, total_steps, 1) for s in range(reps)])  # fmt: skip
    print(f"[bench matched] {name}: Brax, {n}x envs x {reps}", flush=True)
    return summarise(f"Brax PPO, 1 seed, {n}x envs", n,
                     [brax_row(name, case, 0, total_steps, n) for _ in range(reps)])  # fmt: skip


@contextmanager
def fresh_compilation_cache(path: str) -> Iterator[None]:
    """A fresh persistent compilation cache at `path` for this process and the peer workers."""
    jax.config.update("jax_compilation_cache_dir", path)
    old = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
        else:
            os.environ["JAX_COMPILATION_CACHE_DIR"] = old


def _timed(fn: Callable, *args, reps: int = 10) -> float:
    """Median seconds of `fn(*args)` over `reps` calls after a warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def breakdown(name: str, seeds: int = 1) -> dict[str, float]:
    """Milliseconds per update of an rlx PPO update of `seeds` seeds in one program at the
    matched shape, and of its parts compiled alone, each mapped over the seeds as the training
    program maps them (`_over_seeds`): the raw env for the update's env steps (random actions;
    at the rate of long scans with as many envs, and in the rollout's own program shape), the
    policy rollout, the learner's num_epochs x num_minibatches optimisation steps and its
    optimiser alone. The parts and the whole update are timed in alternating rounds
    (`timed_interleaved`). For one seed also the learner's kernel profile and arithmetic rate."""
    from rlx.algos import ppo
    from rlx.bench.throughput import raw_env_rate
    from rlx.runner.execute import Batch

    case = MATCHED[name]
    s = case["settings"]
    per_update = s["num_envs"] * s["unroll_length"]
    rp = runner.plan(
        "ppo", name, seeds=seeds, overrides=rlx_overrides(s, per_update * 40), num_evals=4,
        eval_episodes=case["eval_episodes"],
        env_kwargs={"backend": case["backend"]} if case["backend"] else {},
    )  # fmt: skip
    batch = Batch.make(rp, jax.devices(), None)
    ids = list(range(seeds))
    built = batch.programs_for(ids)
    states = built.init(*batch.inputs(ids), batch.assets)  # leaves [seeds, ...]
    env = batch.env
    rollout = _over_seeds(lambda st: ppo.rollout(env, st, st.key), seeds)
    flat = _over_seeds(lambda st, t: ppo.learner_batch(env, st, t), seeds)(
        states, rollout(states)[1]
    )
    learner = _over_seeds(lambda st, fl: ppo.optimise(st, fl, ppo_loss(env, st), st.key), seeds)
    learner = learner.lower(states, flat).compile()
    minibatch = jax.tree.map(lambda x: x[:, : x.shape[1] // s["num_minibatches"]], flat)
    grad_steps = s["num_epochs"] * s["num_minibatches"]
    raw = raw_env_rate(name, case["backend"], seeds * s["num_envs"], s["episode_length"], 100,
                       reps=3)  # fmt: skip
    ms = timed_interleaved({
        "raw_unroll": (_over_seeds(raw_unroll(env, rp.base_config), seeds), (states,)),
        "rollout": (rollout, (states,)),
        "learner": (learner, (states, flat)),
        "optimiser": optimiser_call(env, states, minibatch, grad_steps, seeds),
        "chunk": (built.chunk, (states, batch.assets)),
    })  # fmt: skip
    out = {
        "seeds": seeds,
        "raw_env_ms": 1e3 * seeds * per_update / raw["env_steps_per_s"],
        **{f"{k}_ms": 1e3 * v for k, v in ms.items() if k != "chunk"},
        "update_ms": 1e3 * ms["chunk"] / rp.updates_per_chunk,
        "grad_steps_per_update": grad_steps,
    }
    if seeds == 1:
        first = lambda tree: jax.tree.map(lambda x: x[0], tree)  # noqa: E731
        out.update(learner_kernels(learner, states, flat, grad_steps))
        out.update(grad_step_flop_rate(first(states), first(minibatch),
                                       ppo_loss(env, first(states))))  # fmt: skip
    return out


def _over_seeds(fn: Callable, seeds: int) -> Callable:
    """`fn` jitted and mapped over the leading (seeds) axis of every argument as the training
    program maps it (`rlx.runner.programs.over_runs`: vmap, or one seed unbatched)."""
    from rlx.runner.programs import over_runs

    return jax.jit(over_runs(fn, (0,) * len(inspect.signature(fn).parameters), seeds))


def ppo_loss(env: Any, state: Any) -> Callable:
    """PPO's loss ``(params, minibatch) -> (L, info)`` with `state`'s settings."""
    from rlx.algos import ppo

    return lambda p, mb: ppo.loss(p, env, state.config, mb)


def timed_interleaved(
    calls: dict[str, tuple[Callable, tuple]], rounds: int = 5, reps: int = 2
) -> dict[str, float]:
    """Median seconds of each named call ``fn(*args)``, after one warm-up call each, timed in
    `rounds` rounds that each make `reps` calls of every one in turn: a slow spell of a shared
    machine then falls on all the parts alike instead of on whichever was being timed."""
    for fn, args in calls.values():
        jax.block_until_ready(fn(*args))
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for k, (fn, args) in calls.items():
            for _ in range(reps):
                t0 = time.perf_counter()
                jax.block_until_ready(fn(*args))
                times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def learner_kernels(compiled: Any, state: Any, flat: Any, grad_steps: int) -> dict[str, float]:
    """The learner's kernels from a profiler trace (`rlx.bench.kernel_profile`): the share of
    kernel time in matrix products and the kernels run per gradient step. Empty (the table
    then leaves the sentence out) where the profiler fails or its events do not carry the
    program's HLO instruction names, as a GPU's kernel events may not."""
    from rlx.bench.kernel_profile import kernel_times

    try:
        k = kernel_times(compiled, state, flat, calls=10)
    except (RuntimeError, OSError, ValueError) as err:
        print(f"[bench matched] no kernel profile: {err}", flush=True)
        return {}
    if k.kernels_per_call == 0:
        print("[bench matched] no kernel profile: no trace event names a kernel", flush=True)
        return {}
    return {
        "learner_matmul_share": k.matmul_ms / (k.matmul_ms + k.other_ms),
        "learner_kernels_per_step": k.kernels_per_call / grad_steps,
    }


def raw_unroll(env: Any, config: Any) -> Callable:
    """state -> env state after one update's unroll_length steps of the training-wrapped env
    under uniform random actions: the rollout's program without the policy."""
    from rlx.bench.throughput import random_steps
    from rlx.envs import training_env

    tenv = training_env(env, config.episode_length)

    def run(state):
        keys = jax.random.split(state.key, config.unroll_length)
        return random_steps(tenv, config.num_envs, env.action_size, state.env_state, keys)[0]

    return run


def _flops(compiled: Any) -> float:
    """XLA's count of a compiled program's floating-point operations."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return float(cost["flops"])


def grad_step_flop_rate(state: Any, minibatch: Any, loss: Callable) -> dict[str, float]:
    """The arithmetic of one learner step (loss gradient + Adam update on one minibatch), in
    GFLOP from XLA's cost analysis, and the GFLOP/s of a 1024 x 1024 float32 matmul on the same
    device: the rate a learner made of large dots could reach."""
    from rlx.algos import ppo

    step = ppo.minibatch_step(loss, ppo.optimizer(state.config), 1e-4)
    compiled = jax.jit(step).lower((state.params, state.opt_state), minibatch).compile()
    a = jax.random.normal(jax.random.PRNGKey(0), (1024, 1024), jax.numpy.float32)
    matmul = jax.jit(jax.numpy.matmul).lower(a, a).compile()
    return {
        "grad_step_gflop": _flops(compiled) / 1e9,
        "matmul_gflops": _flops(matmul) / 1e9 / _timed(matmul, a, a, reps=20),
    }


def optimiser_call(
    env: Any, states: Any, minibatches: Any, steps: int, seeds: int
) -> tuple[Callable, tuple]:
    """(program, arguments) of `steps` optimiser-only steps (gradient clip, Adam moments and
    the parameter step, on one fixed gradient) in one scan for every seed (the leading axis of
    `states` and `minibatches`): the learner's cost that does not depend on the minibatch size."""
    from rlx.algos import ppo

    def gradient(state, minibatch):
        return jax.grad(ppo_loss(env, state), has_aux=True)(state.params, minibatch)[0]

    def run(state, grads):
        tx = ppo.optimizer(state.config)

        def body(carry, _):
            return ppo.apply_step(tx, 1e-4, grads, *carry), None

        return jax.lax.scan(body, (state.params, state.opt_state), None, length=steps)[0]

    grads = _over_seeds(gradient, seeds)(states, minibatches)
    return _over_seeds(run, seeds), (states, grads)


def row_line(r: dict, peer: dict | None) -> str:
    """A `summarise` row as a Markdown table row: rate, rate over `peer`'s, over the raw env's
    (and the raw env's), compile cold and warm, untrained and final return."""
    from rlx.bench.throughput import fmt_number

    vs = r["rate_mean"] / peer["rate_mean"] if peer else math.nan
    raw = r.get("raw_rate", math.nan)
    return (
        f"| {r['row']} | {fmt_number(r['rate_mean'])} ± {fmt_number(r['rate_std'])} | {fmt_number(vs, 2)}x "
        f"| {fmt_number(r['rate_mean'] / raw, 2)} | {fmt_number(raw)} | {fmt_number(r['compile_cold_s'], 1)} "
        f"| {fmt_number(r['compile_warm_s'], 1)} "
        f"| {_initial(r)} | {fmt_number(r['return_mean'], 1)} ± {fmt_number(r['return_std'], 1)} |"
    )


def _initial(row: dict) -> str:
    """The untrained return cell (reports before this column have none)."""
    from rlx.bench.throughput import fmt_number

    if "initial_mean" not in row:
        return "n/a"
    return f"{fmt_number(row['initial_mean'], 1)} ± {fmt_number(row['initial_std'], 1)}"


def _flop_line(b: dict) -> str:
    """One sentence: the learner's arithmetic rate against the machine's matmul rate."""
    gflop = b["grad_steps_per_update"] * b["grad_step_gflop"]
    rate = gflop / (b["learner_ms"] / 1e3)
    return (
        f"Learner arithmetic (XLA's cost analysis): {1e3 * b['grad_step_gflop']:.2f} MFLOP per "
        f"step (gradient + Adam on one minibatch), {gflop:.3f} GFLOP per update in "
        f"{b['learner_ms']:.1f} ms: {rate:.1f} GFLOP/s, {rate / b['matmul_gflops']:.0%} of a "
        f"1024 x 1024 float32 matmul's {b['matmul_gflops']:.1f} GFLOP/s on the same device, "
        f"at which rate the update's learner steps would take {1e3 * gflop / b['matmul_gflops']:.1f} ms."
    )


def _breakdown_lines(bs: list[dict]) -> list[str]:
    """The update-breakdown table (a row per seed count) and the sentences on the learner:
    the optimiser's share, kernels and flop rate (one seed), how it grows with seeds."""
    split = "optimiser_ms" in bs[0]  # reports made before 07c9788 lack the split columns
    head = "| seeds | raw env | " + ("raw env, one unroll | " if split else "")
    head += "policy rollout | learner (grad steps) | " + ("of which optimiser | " if split else "")
    lines = [
        "", "Where one rlx update goes (ms, median; each part compiled alone and mapped over "
        "the seeds as in training (vmap; one seed unbatched); raw env: the update's env steps "
        "at the rate of long random-action scans with as many envs; one unroll: the "
        "rollout's own program shape with random actions instead of the policy):", "",
        head + "whole update | update / raw | bound: raw / (raw + learner) |",
        "|" + "---:|" * (head.count("|") + 2),
    ]  # fmt: skip
    for b in bs:
        bound = b["raw_env_ms"] / (b["raw_env_ms"] + b["learner_ms"])
        row = f"| {b.get('seeds', 1)} | {b['raw_env_ms']:.1f} | "
        row += f"{b['raw_unroll_ms']:.1f} | " if split else ""
        row += f"{b['rollout_ms']:.1f} | {b['learner_ms']:.1f} ({b['grad_steps_per_update']}) | "
        row += f"{b['optimiser_ms']:.1f} | " if split else ""
        lines.append(
            row + f"{b['update_ms']:.1f} | {b['raw_env_ms'] / b['update_ms']:.2f} | {bound:.2f} |"
        )
    one = bs[0]
    if split:
        lines += ["", _optimiser_line(one)]
    if "learner_matmul_share" in one:
        lines += ["", _kernel_line(one)]
    if "grad_step_gflop" in one:
        lines += ["", _flop_line(one)]
    for b in bs[1:]:
        lines += ["", _seeds_line(one, b)]
    return lines


def _seeds_line(one: dict, b: dict) -> str:
    """One sentence: how the N-seed update's parts grew over the 1-seed update's."""
    n = b["seeds"]
    return (
        f"{n} seeds in one program: the raw env's {n}x envs take "
        f"{b['raw_env_ms'] / one['raw_env_ms']:.1f}x one seed's time, the rollout "
        f"{b['rollout_ms'] / one['rollout_ms']:.1f}x, the learner "
        f"{b['learner_ms'] / one['learner_ms']:.1f}x (its optimiser "
        f"{b['optimiser_ms'] / one['optimiser_ms']:.1f}x) and the whole update "
        f"{b['update_ms'] / one['update_ms']:.1f}x."
    )


def _optimiser_line(b: dict) -> str:
    """One sentence: the policy's share of the rollout and the optimiser's of the learner."""
    return (
        f"The policy adds {b['rollout_ms'] - b['raw_unroll_ms']:.1f} ms to the "
        f"{b['raw_unroll_ms']:.1f} ms its env steps take in the same program shape. The "
        f"optimiser alone (global-norm clip, Adam moments, parameter step; "
        f"{b['grad_steps_per_update']} steps on one fixed gradient) takes "
        f"{b['optimiser_ms']:.1f} ms, {b['optimiser_ms'] / b['learner_ms']:.0%} of the learner: "
        f"work per step that scales with the parameter count, not the minibatch size."
    )


def _kernel_line(b: dict) -> str:
    """One sentence: what the learner's kernels are, from the profiler trace."""
    return (
        f"Profiler trace of the learner: {b['learner_kernels_per_step']:.0f} XLA kernels per "
        f"gradient step; matrix products take {b['learner_matmul_share']:.0%} of the kernel "
        f"time, the other kernels (elementwise fusions of the optimiser, activations and "
        f"loss, reductions, copies) {1 - b['learner_matmul_share']:.0%}."
    )


def table(report: dict) -> str:
    """The Markdown tables of a matched report: rows per case, then the update breakdown."""
    from rlx.provenance import describe_hardware

    prov = report["provenance"]
    v = prov["versions"]
    lines = [
        "# Like-for-like: rlx PPO vs Brax PPO with identical settings",
        "",
        f"- hardware: {describe_hardware(prov['hardware'])}",
        f"- rlx: python {v['python']}, jax {v['jax']}, brax {v['brax']}, mujoco-mjx "
        f"{v['mujoco-mjx']}; git {prov['git']}; {prov['date']}",
        f"- command: `{report['command']}`; {report['reps']} repetitions per row",
        "",
        "Rates: env steps/s of training (compile and evaluation excluded), mean ± std over the "
        "repetitions. Compile: seconds of jax trace + lower + XLA compile during the run "
        "(`jax.monitoring` spans, both sides alike), cold = first repetition with an empty "
        "persistent cache, warm = later ones. Returns: deterministic policy, of the untrained "
        "policy (step 0) and after the budget; 1-seed rows: one seed per repetition; N-seed "
        "rows: the N seeds of the first repetition (Brax's N-times-envs rows: one learner). "
        "/ raw env: the row's rate over the raw env's with as many envs on the row's own stack "
        "(rlx's training-wrapped env under random actions in 100-step scans, median of 3, "
        "measured after the rows; compiled by rlx's jax for rlx rows and by the peer venv's jax "
        "for Brax rows, which runs the same physics at another rate).",
        "",
        f"Still different: {DIFFERENCES}",
    ]
    for name, res in report["cases"].items():
        lines += ["", f"## {name} ({res['total_steps']:,} env steps per seed)", "",
                  "Settings: " + ", ".join(f"{k}={v}" for k, v in res["settings"].items()), "",
                  "| row | env steps/s | vs Brax 1 seed/process | / raw env, same envs "
                  "| raw env steps/s (own stack) | compile cold s | compile warm s "
                  "| untrained return | final return |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        peer = next((r for r in res["rows"] if r["row"].startswith("Brax PPO, 1 seed per")), None)
        lines += [row_line(r, peer) for r in res["rows"]]
        breakdowns = res.get("breakdowns") or ([res["breakdown"]] if "breakdown" in res else [])
        if breakdowns:
            lines += _breakdown_lines(breakdowns)
    lines.append("")
    return "\n".join(lines)


def main(out, names: list[str], seed_counts: list[int], reps: int, quick: bool,
         peer: bool) -> Any:  # fmt: skip
    """Runs the matched cases with a fresh compilation cache; writes matched.json/.md."""
    import json
    import tempfile
    from pathlib import Path

    from rlx.provenance import provenance

    report: dict[str, Any] = {
        "command": "rlx bench --matched" + (" --quick" if quick else ""), "reps": reps,
        "cases": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as cache, fresh_compilation_cache(cache):
        for name in names:
            case = MATCHED[name]
            total = case["quick_steps"] if quick else case["total_steps"]
            res: dict[str, Any] = {"total_steps": total, "settings": case["settings"]}
            res["rows"] = run_case(name, seed_counts, reps, total, peer)
            for n in seed_counts:
                print(f"[bench matched] {name}: update breakdown, {n} seed(s)", flush=True)
                res.setdefault("breakdowns", []).append(breakdown(name, n))
            report["cases"][name] = res
    report["provenance"] = provenance()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "matched.json").write_text(json.dumps(report, indent=1, default=float))
    (out / "matched.md").write_text(table(report))
    return out / "matched.md"
