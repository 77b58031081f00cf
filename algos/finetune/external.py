"""HABC on a researcher's own policy and externally collected episodes.

- **The policy** is a `PolicyAdapter`: ``act(params, obs) -> mean action`` in [-1, 1]^A (any
  pure JAX function of a params pytree; ``obs`` may carry leading batch axes), the params to
  fine-tune and the action size. HABC clones the policy's *mean* mu_theta(s) towards the
  weighted actions, so the adapter gives that deterministic mean and `jax.grad` must reach
  ``params`` through it: a sampling ``act(params, obs, key)`` would make the cloning loss and
  its gradient depend on the noise. A stochastic policy's adapter returns its mean (or mode).
  `adapter_from_artifact` wraps rlx's own ``bc`` artifacts (``tanh(MLP(norm(s)))``).
- **The episodes** follow `rlx.algos.finetune.episodes`'s ``.npz`` schema (who acted and why,
  the outcome), written by any process.
- `finetune(adapter, episodes, config, updates, key) -> params` runs `updates` HABC updates
  (`rlx.algos.finetune.habc.learn`: label, fit the heads, weigh, clone) on those episodes,
  compiled once, and returns the fine-tuned params (same structure as ``adapter.params``).
- `finetune_artifact` is ``rlx finetune``: an episode file and an rlx artifact in, the
  fine-tuned artifact (with ``finetune.json``, a summary of the metrics) out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from rlx.algos.finetune import episodes as episode_io
from rlx.algos.finetune import habc

from rlx.errors import RlxError, positive_size
from rlx.learn import normalizer

PolicyAct = Callable[[Any, jax.Array], jax.Array]
"""``act(params, obs [..., O]) -> mean action [..., A]`` in [-1, 1], differentiable in params."""

SUMMARY_FILE = "finetune.json"
"""The summary `finetune_artifact` writes into the fine-tuned artifact's directory."""


class PolicyAdapter(NamedTuple):
    """A pretrained policy HABC can fine-tune: its mean-action function, params, sizes."""

    act: PolicyAct
    params: Any
    """The trainable pytree `act` takes (anything `jax.tree` flattens)."""
    action_size: int
    observation_size: int | None = None
    """The observation width `act` expects (None: taken from the episodes)."""


def make_adapter(act: PolicyAct, params: Any, action_size: int,
                 observation_size: int | None = None) -> PolicyAdapter:  # fmt: skip
    """A `PolicyAdapter` with its sizes checked (integers >= 1); with `observation_size`, `act`
    is also evaluated abstractly on one observation and must return shape (action_size,)."""
    adapter = PolicyAdapter(act, params, positive_size("action_size", action_size),
                            None if observation_size is None
                            else positive_size("observation_size", observation_size))  # fmt: skip
    if observation_size is not None:
        check_act(adapter, adapter.observation_size)
    return adapter


def check_act(adapter: PolicyAdapter, obs_size: int) -> None:
    """RlxError unless ``adapter.act(params, obs)`` on one observation of width `obs_size`
    returns shape (action_size,) (evaluated abstractly: nothing runs)."""
    obs = jax.ShapeDtypeStruct((obs_size,), jnp.float32)
    try:
        out = jax.eval_shape(adapter.act, adapter.params, obs)
    except (TypeError, ValueError, KeyError) as err:
        raise RlxError(
            f"policy adapter's act(params, obs) fails on an observation in R^{obs_size}: {err}"
        ) from None
    if getattr(out, "shape", None) != (adapter.action_size,):
        raise RlxError(
            f"policy adapter says it acts in R^{adapter.action_size}, but act(params, obs) "
            f"returns shape {getattr(out, 'shape', out)!r}."
        )


def check_sizes(adapter: PolicyAdapter, obs_size: int, action_size: int, what: str) -> None:
    """RlxError unless the adapter's sizes are `obs_size`/`action_size` (of `what`: "the
    episodes'" or an env's name), e.g. "policy adapter acts in R^3, the episodes' actions are
    in R^4"."""
    if adapter.action_size != action_size:
        raise RlxError(
            f"policy adapter acts in R^{adapter.action_size}, {what} actions are in "
            f"R^{action_size}."
        )
    if adapter.observation_size is not None and adapter.observation_size != obs_size:
        raise RlxError(
            f"policy adapter observes R^{adapter.observation_size}, {what} observations are "
            f"in R^{obs_size}."
        )
    check_act(adapter, obs_size)


def check_env(adapter: PolicyAdapter, env: Any, name: str = "the env") -> None:
    """`check_sizes` against a Brax env's observation and action widths."""
    from rlx import envs

    check_sizes(adapter, envs.observation_size(env), int(env.action_size), f"{name}'s")


# --- rlx's own artifacts ---------------------------------------------------------------------


def artifact_network(directory: str | Path, activation: str | None = None) -> Any:
    """The `rlx.algos.bc.TanhPolicy` of a ``bc`` artifact: hidden widths from its config (else
    from its kernels' shapes), activation from its config or `activation` (RlxError naming
    the choices when neither gives one)."""
    from rlx.algos.bc import TanhPolicy

    from rlx.learn.networks import ACTIVATIONS
    from rlx.policy import read_meta

    meta = read_meta(directory)
    config = meta.get("config") or {}
    activation = config.get("activation", activation)
    if activation not in ACTIVATIONS:
        raise RlxError(
            f"policy artifact {str(directory)!r} names no known activation (got "
            f"{activation!r}); pass activation= one of {', '.join(ACTIVATIONS)}."
        )
    kernels = [v["shape"] for k, v in meta["params"].items()
               if k.startswith("policy/") and k.endswith("kernel")]  # fmt: skip
    hidden = config.get("hidden") or [shape[-1] for shape in kernels[:-1]]
    return TanhPolicy(tuple(hidden), int(meta["action_size"]), activation)


def adapter_from_artifact(directory: str | Path, activation: str | None = None) -> PolicyAdapter:
    """A `PolicyAdapter` of an rlx ``bc``-style artifact (``rlx train --algo bc --export``, the
    ``squeeze-lift-l<N>-sft`` recipes, or `finetune_artifact`'s output): params are the
    network's, ``act`` normalises observations with the artifact's frozen statistics."""
    from rlx.policy import load_pretrained, read_meta

    tree = load_pretrained(Path(directory))
    meta = read_meta(directory)
    net = artifact_network(directory, activation)
    stats = normalizer.from_dict(jax.tree.map(jnp.asarray, tree["obs_stats"]))

    def act(params: Any, obs: jax.Array) -> jax.Array:
        return net.apply(params, normalizer.normalize(stats, obs))

    params = jax.tree.map(jnp.asarray, tree["policy"])
    return make_adapter(act, params, int(meta["action_size"]), int(meta["observation_size"]))


# --- fine-tuning -----------------------------------------------------------------------------


def observation_stats(ep: habc.Episodes) -> normalizer.RunningStats:
    """Statistics of the episodes' valid observations (the heads' input normaliser)."""
    rows = np.asarray(ep.obs)[np.asarray(ep.valid)]
    return normalizer.update(normalizer.init(rows.shape[-1]), jnp.asarray(rows))


def finetune_with_metrics(
    adapter: PolicyAdapter,
    episodes: habc.Episodes,
    config: habc.Config | None = None,
    updates: int = 1,
    key: jax.Array | None = None,
) -> tuple[Any, list[dict[str, float]]]:
    """`finetune` that also returns each update's metrics (`habc.learn`'s, as floats)."""
    from rlx import config as cfg

    config = config if config is not None else habc.Config()
    config.validate()
    updates = positive_size("updates", updates)
    check_sizes(adapter, episodes.obs.shape[-1], episodes.action.shape[-1], "the episodes'")
    key = key if key is not None else jax.random.PRNGKey(0)

    def apply(params: Any, constants: Any, obs: jax.Array) -> jax.Array:
        return adapter.act(params, obs)

    state = habc.init_from(key, cfg.as_leaves(config), adapter.params, None,
                           observation_stats(episodes),
                           int(episodes.obs.shape[-1]))  # fmt: skip
    learn = jax.jit(lambda s, ep: habc.learn(s, ep, apply))
    history = []
    for _ in range(updates):
        state, metrics = learn(state, episodes)
        history.append({k: float(v) for k, v in metrics.items()})
    return state.policy, history


def finetune(
    adapter: PolicyAdapter,
    episodes: habc.Episodes,
    config: habc.Config | None = None,
    updates: int = 1,
    key: jax.Array | None = None,
) -> Any:
    """The adapter's params after `updates` HABC updates (`habc.learn`) on `episodes` (from
    `rlx.algos.finetune.episodes.load_episodes`), with `config` (default `habc.Config()`) and
    `key` (default PRNGKey(0)); the heads' inputs are normalised by the episodes' valid
    observations. Same structure as ``adapter.params``; RlxError for mismatched sizes."""
    return finetune_with_metrics(adapter, episodes, config, updates, key)[0]


def config_from_pairs(overrides: Mapping[str, Any]) -> habc.Config:
    """HABC's config with `overrides` (name -> value or text, ``--set``) through the one
    override path (`rlx.spec.resolve`), validated."""
    from rlx import spec

    settings = spec.resolve(habc.ALGORITHM, overrides)
    config = habc.ALGORITHM.make_config(**settings.overrides)
    config.validate()
    return config


def finetune_artifact(
    episodes_path: str | Path,
    policy_dir: str | Path,
    out: str | Path,
    overrides: Mapping[str, Any] | None = None,
    updates: int = 1,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """``rlx finetune``: fine-tunes the rlx artifact `policy_dir` on the episode file
    `episodes_path` (`updates` HABC updates, config `overrides`, key of `seed`) and writes the
    result to `out` as an artifact of the same algorithm, env and config, with
    ``finetune.json`` (the summary returned: inputs, config, per-update metrics) inside.
    Every input is checked before anything is written; `out` is replaced only with
    `overwrite`, and atomically."""
    from rlx.files import check_new

    check_new(out, overwrite)
    config = config_from_pairs(overrides or {})
    ep = episode_io.load_episodes(episodes_path)
    adapter = adapter_from_artifact(policy_dir)
    params, history = finetune_with_metrics(adapter, ep, config, updates,
                                            jax.random.PRNGKey(seed))  # fmt: skip
    summary = finetune_summary(episodes_path, policy_dir, ep, config, seed, history)
    write_finetuned(policy_dir, params, out, summary)
    return summary


def finetune_summary(episodes_path: str | Path, policy_dir: str | Path, ep: habc.Episodes,
                     config: habc.Config, seed: int,
                     history: list[dict[str, float]]) -> dict[str, Any]:  # fmt: skip
    """The JSON summary of a `finetune_artifact` run."""
    from rlx import config as cfg
    from rlx.data.assets import content_hash

    reasons = np.bincount(np.asarray(ep.reason)[np.asarray(ep.valid)],
                          minlength=len(episode_io.reason_names()))  # fmt: skip
    return {
        "kind": "rlx.finetune",
        "episodes": str(episodes_path),
        "episodes_sha256": content_hash(Path(episodes_path)),
        "num_episodes": int(ep.obs.shape[0]),
        "valid_steps": int(np.asarray(ep.valid).sum()),
        "success_rate": float(np.mean(np.asarray(ep.success_step) >= 0)),
        "steps_by_reason": dict(zip(episode_io.reason_names(), map(int, reasons), strict=True)),
        "policy": str(policy_dir),
        "seed": seed,
        "updates": len(history),
        "config": cfg.to_dict(config),
        "metrics": history,
    }


def write_finetuned(policy_dir: str | Path, params: Any, out: str | Path,
                    summary: Mapping[str, Any]) -> Path:  # fmt: skip
    """Writes `params` (the network of `policy_dir`'s artifact, fine-tuned) as an artifact
    of the source's algorithm, env, config and observation statistics, with `summary` as
    ``finetune.json``, to `out` in one atomic step."""
    from rlx import policy
    from rlx.files import atomic_directory
    from rlx.provenance import provenance

    meta = policy.read_meta(policy_dir)
    source = policy.restore_params(Path(policy_dir), meta)
    tree = {**source, "policy": jax.tree.map(np.asarray, params)}
    flat = policy.flatten_params(tree)
    algo = policy.artifact_algorithm(meta, policy_dir)
    config = policy.rebuild_config(algo, meta["config"])
    sizes = {k: meta[k] for k in ("observation_size", "action_size")}
    new_meta = policy.artifact_meta(meta["algorithm"], meta["env"], meta["env_kwargs"], config,
                                    sizes, flat, provenance())  # fmt: skip
    with atomic_directory(out) as tmp:
        policy.write_artifact(tmp, new_meta, flat)
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    return Path(out)
