"""Peer worker: train Brax's own PPO (``brax.training.agents.ppo.train``) on one environment.

Run by the peer venv's python (see :mod:`rlx.bench.peer`), never imported by rlx. Of rlx it
imports only ``rlx.envs.make``, and for a raw-env spec ``rlx.bench.throughput``.

Protocol
--------
stdin: one JSON object ``{"env": str, "backend": str | null, "settings": {...}}``.

* ``env``: any name of ``rlx.envs.make`` (``brax:<name>`` with ``backend``, or one of rlx's
  pure-JAX envs), built unwrapped.
* ``settings``: passed straight through as ``ppo.train`` keyword arguments, except
  ``policy_hidden_layer_sizes`` / ``value_hidden_layer_sizes`` (also accepted at the top
  level of the spec), which become
  ``network_factory=functools.partial(ppo_networks.make_ppo_networks, ...)``.
  ``environment``, ``progress_fn`` and ``network_factory`` may not be given.
* ``network`` (optional): further ``make_ppo_networks`` options: ``activation`` (a name:
  tanh, relu, silu/swish, elu), ``distribution_type``, ``noise_std_type``,
  ``init_noise_std``.
* ``raw_env`` (optional): instead of training, time the training-wrapped env under random
  actions on this venv's jax (``rlx.bench.throughput.raw_env_rate`` with these keyword
  arguments: ``num_envs``, ``episode_length``, ``steps``, ``reps``) and print
  ``{"env_steps_per_s", "versions", "device"}``.

stdout: exactly one line, a JSON object (everything else the process writes to fd 1 while
training is redirected to stderr):

* ``final_eval_return``: ``eval/episode_reward`` of the last evaluation (after the last
  training epoch): the mean over ``num_eval_envs`` eval envs of the undiscounted,
  unscaled return of one episode of at most ``episode_length`` env steps
  (``deterministic_eval`` picks the mode of the policy instead of sampling). NaN if no
  evaluation ran (``num_evals == 0`` or ``run_evals=False``).
* ``eval_curve``: ``[[env_steps, eval/episode_reward], ...]`` for every evaluation, in order;
  the first point is the untrained policy at step 0 when ``num_evals > 1``.
* ``env_steps``: total env steps trained, as counted by ppo.train (see the notes below).
* ``train_env_steps_per_s``: steady-state training throughput, env steps per wall-clock
  second of training epochs that compiled nothing (method below); null when there is no
  such epoch after the first.
* ``compile_s``: estimated one-off cost of the epochs that compiled: their training
  wall-clock minus what their env steps take at ``train_env_steps_per_s`` (method below).
  Null when ``train_env_steps_per_s`` is.
* ``brax_train_env_steps_per_s``: the same steady-state throughput from Brax's own epoch
  timer (``training/walltime``), which times just the jitted epoch call up to
  ``block_until_ready``; a cross-check, normally within a percent or two of the above.
* ``steady_epochs``: how many epochs ``train_env_steps_per_s`` is measured over.
* ``measured_compile_s``: wall-clock seconds jax spent tracing, lowering or compiling
  during the ``ppo.train`` call (training, evaluation, reset, init), from ``jax.monitoring``.
* ``total_wall_s``: wall-clock seconds of the whole ``ppo.train`` call: env reset, network
  init, all compiles, all training epochs and all evaluations (not Python start-up, imports
  or env construction; those are ``setup_s``).
* ``setup_s``: seconds from worker start to just before ``ppo.train`` (imports, env build).
* ``epochs``: per training epoch ``{"env_steps", "steps", "wall_s", "eval_s", "train_s",
  "train_compile_s", "brax_epoch_s"}``, the raw figures the above are made from.
* ``versions``: jax, jaxlib, brax, flax, mujoco, mujoco_mjx distribution versions.
* ``device``: ``str(jax.devices()[0])``.
* ``env``, ``backend``, ``settings``: echoed from the spec.

Timing method
-------------
``ppo.train`` calls ``progress_fn(step, metrics)`` once after an initial evaluation of the
untrained policy (only when ``num_evals > 1``), then once after each of its
``max(num_evals - 1, 1)`` training epochs, right after that epoch's evaluation. Every epoch
runs the same number of training steps, so the same number of env steps. The worker stamps
the wall clock (``time.time()``) on entry to each call and, through a
``jax.monitoring`` time-span listener, records when jax traced, lowered and compiled
anything. For training epoch ``k`` (``t[0]`` being the initial-evaluation call):

  ``wall_s[k]  = t[k] - t[k-1]``
  ``eval_s[k]  = metrics["eval/epoch_eval_time"]`` (Brax's timer around that evaluation)
  ``train_s[k] = wall_s[k] - eval_s[k]``: the training epoch, including the host-side work
  between epochs, but not the evaluation
  ``train_compile_s[k]``: compile work inside ``[t[k-1], t[k-1] + train_s[k]]``

An epoch ``k >= 2`` is steady-state when ``train_compile_s[k] < max(0.05 s, 2% of
train_s[k])``; epoch 1 never is. Over the steady epochs S and the others C:

  ``train_env_steps_per_s = sum(steps[S]) / sum(train_s[S])``
  ``compile_s = sum(train_s[C]) - sum(steps[C]) / train_env_steps_per_s``

With brax 0.14.2 on jax 0.9.2 the training epoch is compiled twice, in epoch 1 and again in
epoch 2 (the carried state's weak types change after the first epoch), and the evaluation
is compiled twice too (initial evaluation and the one after epoch 1). So the first steady
epoch is epoch 3 and a steady-state figure needs ``num_evals >= 4``; ``compile_s`` covers
both training compiles (and any first-call allocation costs) but not the evaluation ones.

Notes for callers
-----------------
* Env steps count ``action_repeat``: one training step is
  ``batch_size * num_minibatches * unroll_length * action_repeat`` env steps, and
  ``ppo.train`` asserts ``batch_size * num_minibatches % num_envs == 0``.
* ``num_timesteps`` is rounded up to whole training steps per epoch, so the run trains
  ``max(num_evals-1, 1) * ceil(num_timesteps / (max(num_evals-1, 1) * steps_per_training_step))
  * steps_per_training_step`` env steps (reported as ``env_steps``).
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from importlib import metadata

_T_START = time.perf_counter()

_NETWORK_KEYS = ("policy_hidden_layer_sizes", "value_hidden_layer_sizes")
# Further `make_ppo_networks` options a spec may give under "network"; "activation" is a name
# (tanh, relu, silu/swish, elu) turned into the flax function.
_NETWORK_OPTIONS = ("activation", "distribution_type", "noise_std_type", "init_noise_std")
_FORBIDDEN_KEYS = ("environment", "progress_fn", "network_factory")
_DISTS = {
    "jax": "jax",
    "jaxlib": "jaxlib",
    "brax": "brax",
    "flax": "flax",
    "mujoco": "mujoco",
    "mujoco_mjx": "mujoco-mjx",
}


def _log(msg: str) -> None:
    print(f"brax_ppo_worker: {msg}", file=sys.stderr, flush=True)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, dist in _DISTS.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    return out


def _make_env(name: str, backend: str | None):
    """The unwrapped environment, resolved by rlx's own registry (ppo.train wraps it itself)."""
    from rlx.envs import make

    return make(name, **({"backend": backend} if backend and name.startswith("brax:") else {}))


def _train_kwargs(spec: dict) -> dict:
    kwargs = dict(spec.get("settings") or {})
    bad = [k for k in _FORBIDDEN_KEYS if k in kwargs]
    if bad:
        raise ValueError(f"settings may not contain {bad}")
    net = {k: spec[k] for k in _NETWORK_KEYS if spec.get(k) is not None}
    net.update({k: kwargs.pop(k) for k in _NETWORK_KEYS if k in kwargs})
    net = {k: tuple(int(x) for x in v) for k, v in net.items()}
    options = dict(spec.get("network") or {})
    bad = sorted(set(options) - set(_NETWORK_OPTIONS))
    if bad:
        raise ValueError(f"network options {bad} unknown; allowed: {list(_NETWORK_OPTIONS)}")
    if "activation" in options:
        from flax import linen

        acts = {"tanh": linen.tanh, "relu": linen.relu, "silu": linen.swish,
                "swish": linen.swish, "elu": linen.elu}  # fmt: skip
        options["activation"] = acts[options["activation"]]
    net.update(options)
    if net:
        from brax.training.agents.ppo import networks as ppo_networks

        kwargs["network_factory"] = functools.partial(ppo_networks.make_ppo_networks, **net)
    return kwargs


_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
# An epoch is steady-state when the compile work measured inside it is below this many seconds
# (or 2% of the epoch, if larger): tiny helper jits (dtype casts, key splits) may compile late.
_STEADY_COMPILE_S = 0.05


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _overlap(spans: list[tuple[float, float]], lo: float, hi: float) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in spans)


def _timing(records: list[tuple[float, int, dict]], spans: list[tuple[float, float]]) -> dict:
    """Per-epoch figures and steady-state throughput from the progress_fn records.

    ``records``: ``(time.time() on entry to progress_fn, step, metrics)``; ``spans``: the
    disjoint ``(start, end)`` wall-clock intervals in which jax traced, lowered or compiled.
    """
    out: dict = {
        "epochs": [],
        "steady_epochs": 0,
        "train_env_steps_per_s": None,
        "compile_s": None,
        "brax_train_env_steps_per_s": None,
    }
    if not records or records[0][1] != 0:
        # num_evals <= 1: no initial-evaluation call, so epoch 1 has no start stamp.
        return out
    epochs = []
    prev_t, prev_step, prev_m = records[0]
    for t, step, m in records[1:]:
        eval_s = float(m.get("eval/epoch_eval_time", 0.0))
        walltime = m.get("training/walltime")
        prev_walltime = prev_m.get("training/walltime", 0.0)
        train_s = t - prev_t - eval_s
        epochs.append(
            {
                "env_steps": int(step),
                "steps": int(step) - prev_step,
                "wall_s": t - prev_t,
                "eval_s": eval_s,
                "train_s": train_s,
                "train_compile_s": _overlap(spans, prev_t, prev_t + train_s),
                "brax_epoch_s": None if walltime is None else float(walltime - prev_walltime),
            }
        )
        prev_t, prev_step, prev_m = t, int(step), m
    out["epochs"] = epochs
    is_steady = [
        k > 0 and e["train_compile_s"] < max(_STEADY_COMPILE_S, 0.02 * e["train_s"])
        for k, e in enumerate(epochs)
    ]
    steady = [e for e, ok in zip(epochs, is_steady, strict=True) if ok]
    compiled = [e for e, ok in zip(epochs, is_steady, strict=True) if not ok]
    out["steady_epochs"] = len(steady)
    if steady:
        rate = sum(e["steps"] for e in steady) / sum(e["train_s"] for e in steady)
        out["train_env_steps_per_s"] = rate
        out["compile_s"] = sum(e["train_s"] - e["steps"] / rate for e in compiled)
        if all(e["brax_epoch_s"] is not None for e in steady):
            brax_s = sum(e["brax_epoch_s"] for e in steady)
            out["brax_train_env_steps_per_s"] = sum(e["steps"] for e in steady) / brax_s
    return out


def _raw_env(spec: dict) -> dict:
    """The raw env's rate on this venv's stack (`rlx.bench.throughput.raw_env_rate`)."""
    import jax

    from rlx.bench.throughput import raw_env_rate

    rate = raw_env_rate(spec["env"], spec.get("backend"), **spec["raw_env"])
    return {"env_steps_per_s": rate["env_steps_per_s"], "versions": _versions(),
            "device": str(jax.devices()[0])}  # fmt: skip


def main() -> None:
    spec = json.load(sys.stdin)
    # Keep fd 1 for the result line only: anything else writing to stdout (Python prints,
    # C/C++ libraries) goes to stderr while we train.
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    if "raw_env" in spec:
        result_out.write(json.dumps(_raw_env(spec)) + "\n")
        result_out.flush()
        return
    env_name = spec["env"]
    backend = spec.get("backend")
    settings_echo = dict(spec.get("settings") or {})

    import jax
    from brax.training.agents.ppo import train as ppo

    # jax 0.9.2 (pinned in requirements-peer.lock) still has jax.device_put_replicated, which
    # brax 0.14.2's ppo.train needs (only deprecated there); no shim is required.
    kwargs = _train_kwargs(spec)
    env = _make_env(env_name, backend)
    _log(f"env={env_name} backend={backend} device={jax.devices()[0]} settings={settings_echo}")

    records: list[tuple[float, int, dict]] = []
    spans: list[tuple[float, float]] = []

    def on_span(event: str, start: float, end: float, **_) -> None:
        if event in _COMPILE_EVENTS:
            spans.append((start, end))

    jax.monitoring.register_event_time_span_listener(on_span)

    def progress_fn(step, metrics) -> None:
        t = time.time()
        m = {}
        for k, v in metrics.items():
            try:
                m[k] = float(v)
            except (TypeError, ValueError):
                pass  # non-scalar metric: not needed here
        records.append((t, int(step), m))
        _log(
            f"step={int(step)} eval/episode_reward={m.get('eval/episode_reward', math.nan):.3f} "
            f"training/sps={m.get('training/sps', math.nan):.0f} t={t - t_train:.1f}s"
        )

    t_train = time.time()
    setup_s = time.perf_counter() - _T_START
    _, _, final_metrics = ppo.train(environment=env, progress_fn=progress_fn, **kwargs)
    t_end = time.time()
    total_wall_s = t_end - t_train
    spans = _union(spans)

    curve = [[s, m["eval/episode_reward"]] for _, s, m in records if "eval/episode_reward" in m]
    final = final_metrics.get("eval/episode_reward") if final_metrics else None
    timing = _timing(records, spans)
    result = {
        "final_eval_return": float(final) if final is not None else math.nan,
        "eval_curve": curve,
        "env_steps": records[-1][1] if records else None,
        "train_env_steps_per_s": timing["train_env_steps_per_s"],
        "compile_s": timing["compile_s"],
        "brax_train_env_steps_per_s": timing["brax_train_env_steps_per_s"],
        "steady_epochs": timing["steady_epochs"],
        "measured_compile_s": _overlap(spans, t_train, t_end),
        "total_wall_s": total_wall_s,
        "setup_s": setup_s,
        "epochs": timing["epochs"],
        "versions": _versions(),
        "device": str(jax.devices()[0]),
        "env": env_name,
        "backend": backend,
        "settings": settings_echo,
    }
    if timing["train_env_steps_per_s"] is None:
        _log(
            "no steady-state training epoch (every epoch after the first compiled, or "
            "num_evals < 3): train_env_steps_per_s and compile_s are null; raise num_evals"
        )
    result_out.write(json.dumps(result) + "\n")
    result_out.flush()


if __name__ == "__main__":
    main()
