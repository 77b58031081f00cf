"""Policy artifacts: a trained policy that outlives its run, as a directory.

An artifact is what `Algorithm.policy_params` selects from a training state (parameters and
normaliser statistics, nothing else) plus what is needed to rebuild ``act`` around it::

    <dir>/policy.json   format, algorithm, env and its keywords, the full config
                        (`rlx.config.to_dict`), observation and action sizes, the stored
                        params (path -> shape, dtype), the run it came from (index, seed,
                        grid point, final evaluation point), rlx version, git revision
    <dir>/params/       the params (orbax), a flat dict keyed by tree path, e.g.
                        "policy/params/MLP_0/Dense_0/kernel", so it survives code changes
                        that reorder fields

It is written into a temporary directory next to ``<dir>`` and renamed when complete.
`load_policy(dir)` gives a jittable ``act(obs, key, deterministic)`` with no training state:
the config is rebuilt through `rlx.spec.resolve` (the one override path) and the algorithm's
`make_policy` is applied to the restored params, the same code the runner evaluated.
`load_artifact` also returns the meta data, params and env (for `rlx eval` and rendering).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from brax.envs.base import Env

from rlx import algorithm, envs, spec
from rlx import config as cfg
from rlx.errors import RlxError
from rlx.files import atomic_directory, check_new, write_text_atomic

FORMAT = 1
META_FILE = "policy.json"
PARAMS_DIR = "params"
SEPARATOR = "/"


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A loaded policy artifact: its meta data, params, acting function and environment."""

    path: Path
    meta: dict[str, Any]
    params: Any
    """Nested dicts of host arrays, as `Algorithm.policy_params` returned them."""
    act: Callable[..., jax.Array]
    """``act(obs, key, deterministic) -> action``, jittable, built by `make_policy`."""
    env: Env
    """The env `act` was built for (the artifact's own, or the one asked for)."""
    env_name: str
    config: Any
    """The algorithm's config (hyperparameters as float32 leaves, as the runner passes them)."""


# --- params keyed by tree path -------------------------------------------------------------


def path_key(path: tuple[Any, ...]) -> str:
    """A tree path of nested string-keyed dicts as ``"a/b/c"``; anything else is refused
    (`Algorithm.policy_params` must return nested dicts with string keys)."""
    parts = []
    for entry in path:
        key = getattr(entry, "key", None)
        if not isinstance(entry, jax.tree_util.DictKey) or not isinstance(key, str):
            raise TypeError(
                f"policy params must be nested dicts with string keys; found {entry!r} at "
                f"{jax.tree_util.keystr(path)}."
            )
        if SEPARATOR in key or not key:
            raise TypeError(f"policy params key {key!r} is empty or contains {SEPARATOR!r}.")
        parts.append(key)
    return SEPARATOR.join(parts)


def flatten_params(params: Any) -> dict[str, np.ndarray]:
    """``{"a/b/c": host array}`` for every leaf of `params` (nested string-keyed dicts)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    return {path_key(path): np.asarray(leaf) for path, leaf in leaves}


def unflatten_params(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The nested dicts of `flatten_params`'s form (the inverse, whatever the key order)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(SEPARATOR)
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


# --- writing -------------------------------------------------------------------------------


def sizes(env: Env) -> dict[str, int]:
    """The observation and action widths of `env`."""
    return {"observation_size": envs.observation_size(env), "action_size": int(env.action_size)}


def artifact_meta(
    algo: str,
    env_name: str,
    env_kwargs: Mapping[str, Any],
    config: Any,
    env_sizes: Mapping[str, int],
    flat: Mapping[str, np.ndarray],
    provenance: Mapping[str, Any],
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The contents of ``policy.json``."""
    from rlx import __version__

    return {
        "kind": "rlx.policy",
        "format": FORMAT,
        "algorithm": algo,
        "env": env_name,
        "env_kwargs": dict(env_kwargs),
        "config": cfg.to_dict(config),
        **dict(env_sizes),
        "params": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in flat.items()},
        "run": dict(run) if run is not None else None,
        "rlx_version": __version__,
        "git": provenance.get("git"),
        "diff_sha256": provenance.get("diff_sha256"),
        "versions": provenance.get("versions"),
    }


def write_artifact(
    directory: Path, meta: Mapping[str, Any], flat: Mapping[str, np.ndarray]
) -> Path:
    """Writes ``policy.json`` and the params into a temporary directory next to `directory`,
    then renames it to `directory` (replacing an existing artifact). Returns `directory`."""
    import orbax.checkpoint as ocp

    directory = Path(directory).resolve()
    with atomic_directory(directory) as tmp:
        stored = {k: v for k, v in flat.items() if v.size > 0}  # orbax refuses empty arrays
        if stored:
            checkpointer = ocp.StandardCheckpointer()
            checkpointer.save(tmp / PARAMS_DIR, stored)
            checkpointer.wait_until_finished()
            checkpointer.close()
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
    return directory


def export_policy(
    directory: Path | str,
    algo: str,
    env_name: str,
    env_kwargs: Mapping[str, Any],
    config: Any,
    params: Any,
    provenance: Mapping[str, Any],
    run: Mapping[str, Any] | None = None,
) -> Path:
    """Writes a policy artifact of `params` (`Algorithm.policy_params` of one run's state) to
    `directory`, atomically. `run` describes where it came from (``index``, ``seed``,
    ``grid_point``, ``eval_point``: `rlx eval`'s default key)."""
    algorithm.get(algo)
    env = envs.make(env_name, **dict(env_kwargs))
    flat = flatten_params(params)
    meta = artifact_meta(algo, env_name, env_kwargs, config, sizes(env), flat, provenance, run)
    return write_artifact(Path(directory), meta, flat)


def run_info(
    index: int, seed: int, grid_point: Mapping[str, Any], eval_point: int, eval_episodes: int
) -> dict[str, Any]:
    """Where an artifact's policy came from: the run's index in its batch, seed and grid
    point, and its final evaluation (point index and episodes: `rlx eval`'s defaults)."""
    return {"index": index, "seed": seed, "grid_point": dict(grid_point),
            "eval_point": eval_point, "eval_episodes": eval_episodes}  # fmt: skip


def export_runs(
    rp: Any,
    ids: list[int],
    state: Any,
    provenance: Mapping[str, Any],
    directory_of: Callable[[int], Path],
    wanted: Callable[[int], bool] = lambda i: True,
) -> list[Path]:
    """Exports the runs `ids` of a runner slice (batched device `state`, rows in `ids` order,
    maybe padded) that are `wanted`, run i to ``directory_of(i)``; returns the directories.
    Only `policy_params` of the state leaves the device; on a multi-host run every process
    gathers them and process 0 alone writes."""
    from rlx.runner.execute import host_rows

    chosen = [(row, i) for row, i in enumerate(ids) if wanted(i)]
    if not chosen:
        return []
    algo = rp.algorithm
    params = host_rows(algo.policy_params(state), len(ids))
    if jax.process_index() != 0:
        return []
    env_sizes = sizes(rp.make_env())
    written = []
    for row, i in chosen:
        point_index, seed = rp.runs[i]
        point = rp.points[point_index]
        config = rp.base_config.replace(**point)
        flat = flatten_params(jax.tree.map(lambda x, r=row: x[r], params))
        run = run_info(i, seed, point, rp.num_evals, rp.eval_episodes)
        meta = artifact_meta(rp.algo, rp.env, rp.env_kwargs, config, env_sizes, flat,
                             provenance, run)  # fmt: skip
        written.append(write_artifact(directory_of(i), meta, flat))
    return written


# --- reading -------------------------------------------------------------------------------


def read_meta(directory: Path | str) -> dict[str, Any]:
    """``policy.json`` of an artifact; RlxError for a missing directory or a partial one."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RlxError(
            f"policy artifact {str(directory)!r} does not exist (or is not a directory)."
        )
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise RlxError(f"policy artifact {str(directory)!r} is incomplete: it has no {META_FILE}.")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise RlxError(f"{str(meta_path)!r} is not valid JSON: {err}.") from None
    if meta.get("kind") != "rlx.policy" or meta.get("format") != FORMAT:
        raise RlxError(
            f"{str(meta_path)!r} is not an rlx policy artifact of format {FORMAT} "
            f"(kind {meta.get('kind')!r}, format {meta.get('format')!r})."
        )
    return meta


def restore_params(directory: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The params of an artifact as nested dicts of host arrays, checked against the paths,
    shapes and dtypes its ``policy.json`` lists; RlxError when they are missing or differ."""
    import orbax.checkpoint as ocp

    listed = meta["params"]
    expected_stored = {k for k, v in listed.items() if int(np.prod(v["shape"])) > 0}
    params_dir = Path(directory).resolve() / PARAMS_DIR
    flat: dict[str, Any] = {}
    if expected_stored:
        if not params_dir.is_dir():
            raise RlxError(
                f"policy artifact {str(directory)!r} is incomplete: it has no {PARAMS_DIR}/ "
                f"({len(expected_stored)} arrays expected)."
            )
        checkpointer = ocp.StandardCheckpointer()
        try:
            flat = dict(checkpointer.restore(params_dir))
        except (FileNotFoundError, ValueError, KeyError) as err:
            raise RlxError(f"cannot read the params of {str(directory)!r}: {err}") from None
        finally:
            checkpointer.close()
    if set(flat) != expected_stored:
        missing, extra = sorted(expected_stored - set(flat)), sorted(set(flat) - expected_stored)
        raise RlxError(
            f"the params of {str(directory)!r} do not match its {META_FILE}: missing "
            f"{missing or 'none'}, unexpected {extra or 'none'}."
        )
    for key, info in listed.items():
        empty = key not in expected_stored  # zero-size: not stored, rebuilt from its shape
        value = np.zeros(info["shape"], info["dtype"]) if empty else np.asarray(flat[key])
        if list(value.shape) != info["shape"] or str(value.dtype) != info["dtype"]:
            raise RlxError(
                f"param {key!r} of {str(directory)!r} is {value.dtype}{list(value.shape)}, "
                f"{META_FILE} says {info['dtype']}{info['shape']}."
            )
        flat[key] = value
    return unflatten_params(flat)


def rebuild_config(algo: algorithm.Algorithm, config_dict: Mapping[str, Any]) -> Any:
    """The algorithm's config from its `rlx.config.to_dict` form, through `rlx.spec.resolve`
    (unknown or mistyped fields are refused), validated."""
    settings = spec.resolve(algo, config_dict)
    config = algo.make_config(**settings.overrides)
    config.validate()
    return config


def check_sizes(meta: Mapping[str, Any], env_name: str, env: Env) -> None:
    """RlxError unless `env` has the artifact's observation and action sizes (names both)."""
    have = sizes(env)
    want = {k: meta[k] for k in ("observation_size", "action_size")}
    if have != want:
        raise RlxError(
            f"the policy was trained on {meta['env']} (observation size "
            f"{want['observation_size']}, action size {want['action_size']}); {env_name} has "
            f"observation size {have['observation_size']}, action size {have['action_size']}."
        )


def artifact_algorithm(meta: Mapping[str, Any], directory: Path | str) -> algorithm.Algorithm:
    """The algorithm an artifact names, through `rlx.algorithm.get_algorithm` (built-in,
    registered, entry point or ``package.module:ATTR``); RlxError saying how to make an
    unknown name resolve."""
    return _resolved(meta["algorithm"], directory, "algorithm", algorithm.get_algorithm,
                     "rlx.register_algorithm(record)")  # fmt: skip


def artifact_env(meta: Mapping[str, Any], directory: Path | str, env: str | None = None) -> Env:
    """The env of an artifact (its name and keywords), or `env` (a name, its default
    keywords), through `rlx.envs.make`; RlxError saying how to make an unknown name resolve."""
    if env is not None and env != meta["env"]:
        return envs.make(env)
    return _resolved(meta["env"], directory, "environment",
                     lambda n: envs.make(n, **meta["env_kwargs"]),
                     "rlx.register_env(name, factory)")  # fmt: skip


def _resolved(name: str, directory: Path | str, what: str, resolve: Callable[[str], Any],
              register: str) -> Any:  # fmt: skip
    from rlx import plugins

    try:
        return resolve(name)
    except RlxError as err:
        if plugins.is_import_path(name) or not str(err).startswith(f"unknown {what}"):
            raise RlxError(f"policy artifact {str(directory)!r}: {err}") from None
        raise RlxError(
            f"policy artifact {str(directory)!r} names the {what} {name!r}, which is not one "
            f"rlx knows: register it first ({register}), or train it under an importable "
            "name (package.module:ATTR), which the artifact then records."
        ) from None


def load_artifact(directory: Path | str, env: str | None = None) -> Artifact:
    """A policy artifact with its `act`, built for the artifact's env or for `env` (a name;
    its default keywords), which must have the same observation and action sizes. The
    artifact's algorithm and env names resolve as everywhere (`artifact_algorithm`,
    `artifact_env`): a ``package.module:ATTR`` name imports."""
    directory = Path(directory)
    meta = read_meta(directory)
    algo = artifact_algorithm(meta, directory)
    config = rebuild_config(algo, meta["config"])
    env_name = env or meta["env"]
    env_obj = artifact_env(meta, directory, env)
    check_sizes(meta, env_name, env_obj)
    algo.check_env(env_obj, config)
    params = restore_params(directory, meta)
    leaves = cfg.as_leaves(config)
    act = algo.make_policy(params, env_obj, leaves)
    _check_act(act, env_obj, directory)
    return Artifact(directory, meta, params, act, env_obj, env_name, leaves)


def load_policy(directory: Path | str) -> Callable[..., jax.Array]:
    """``act(obs, key, deterministic) -> action`` of a policy artifact: jittable, no training
    state (`rlx.load_policy`)."""
    return load_artifact(directory).act


def _check_act(act: Callable[..., jax.Array], env: Env, directory: Path) -> None:
    """Abstract evaluation of `act` on one observation: params that do not fit the algorithm's
    networks are refused here (RlxError), not at the first call."""
    obs = jax.ShapeDtypeStruct((envs.observation_size(env),), np.float32)
    try:
        out = jax.eval_shape(lambda o, k: act(o, k, True), obs, jax.random.PRNGKey(0))
    except (KeyError, ValueError, TypeError) as err:
        raise RlxError(
            f"the params of {str(directory)!r} do not fit its algorithm: {err}"
        ) from None
    if out.shape != (env.action_size,):
        raise RlxError(
            f"the policy of {str(directory)!r} acts with shape {out.shape}, "
            f"the env needs ({env.action_size},)."
        )


def evaluation_key(seed: int, point: int) -> jax.Array:
    """The runner's evaluation key of the run with `seed` at evaluation point `point`
    (`rlx.runner.programs.step_functions`): ``fold_in(split(PRNGKey(seed))[1], point)``."""
    return jax.random.fold_in(jax.random.split(jax.random.PRNGKey(seed))[1], point)


def evaluate_artifact(artifact: Artifact, episodes: int, seed: int, point: int) -> dict[str, float]:
    """`rlx.evaluation.evaluate` of the artifact's deterministic policy on its env: `episodes`
    episodes of the config's ``episode_length`` (0 or none: the env's default) with the
    runner's key of (`seed`, `point`) (`evaluation_key`), so the run's own seed and final
    point give the numbers of its last recorded evaluation."""
    from rlx.evaluation import evaluate

    length = getattr(artifact.config, "episode_length", 0) or envs.episode_length(artifact.env)
    run = jax.jit(lambda k: evaluate(artifact.env, artifact.act, k, episodes, length))
    return {k: float(v) for k, v in run(evaluation_key(seed, point)).items()}


@dataclasses.dataclass(frozen=True)
class PolicyEvaluation:
    """`evaluate_policy`'s result: the artifact, the evaluation's episodes and key, and the
    metrics (``eval/return``, ``eval/return_std`` and the env's outcomes)."""

    artifact: Artifact
    episodes: int
    seed: int
    point: int
    metrics: dict[str, float]

    def record(self) -> dict[str, Any]:
        """The JSON record ``rlx eval --out`` writes (``kind: rlx.eval``)."""
        meta = self.artifact.meta
        return {"kind": "rlx.eval", "artifact": str(self.artifact.path),
                "algorithm": meta["algorithm"], "trained_on": meta["env"],
                "env": self.artifact.env_name, "episodes": self.episodes, "seed": self.seed,
                "point": self.point, "metrics": self.metrics}  # fmt: skip

    def table(self) -> str:
        """A short Markdown table: return mean ± std and the env's outcomes."""
        meta, metrics = self.artifact.meta, self.metrics
        lines = [
            f"{meta['algorithm']} policy trained on {meta['env']}, evaluated on "
            f"{self.artifact.env_name}: {self.episodes} episodes, key of seed {self.seed} at "
            f"point {self.point}",
            "",
            "| metric | value |",
            "|---|---|",
            f"| return | {metrics['eval/return']:.2f} ± {metrics['eval/return_std']:.2f} |",
        ]
        for name, rule in envs.outcome_rules(self.artifact.env).items():
            value = metrics[f"eval/{name}"]
            text = f"{100 * value:.1f}%" if rule.percent else f"{value:.4g}"
            lines.append(f"| {rule.label or name} | {text} |")
        return "\n".join(lines)

    def write_json(self, path: Path | str, overwrite: bool = False) -> Path:
        """Writes `record()` to `path` atomically (refused where it exists, unless
        `overwrite`); returns `path`."""
        check_new(path, overwrite)
        return write_text_atomic(path, json.dumps(self.record(), indent=1))


def evaluation_seed(
    meta: Mapping[str, Any], seed: int | None, directory: Path | str
) -> tuple[int, int]:
    """(seed, evaluation point) of an artifact's evaluation key: `seed` (default: the
    artifact's run seed) and the run's final evaluation point (0 for an artifact that records
    no run); RlxError where neither gives a seed."""
    run = meta.get("run")
    if seed is None and run is None:
        raise RlxError(f"{str(directory)!r} records no run (no seed to default to); give --seed.")
    seed = seed if seed is not None else int(run["seed"])
    return seed, int(run["eval_point"]) if run is not None else 0


def evaluate_policy(
    directory: Path | str,
    *,
    env: str | None = None,
    episodes: int | None = None,
    seed: int | None = None,
) -> PolicyEvaluation:
    """``rlx eval``: the deterministic policy of the artifact `directory` evaluated on its env
    (or `env`, of the same sizes) for `episodes` episodes (default: the env's,
    `rlx.evaluation.default_episodes`) with the runner's key of `seed` (default: the run's own)
    at the run's final point, so the defaults reproduce the run's last evaluation."""
    from rlx import evaluation

    artifact = load_artifact(directory, env=env)
    seed, point = evaluation_seed(artifact.meta, seed, directory)
    episodes = episodes or evaluation.default_episodes(artifact.env)
    evaluation.check_episodes(artifact.env, episodes)
    metrics = evaluate_artifact(artifact, episodes, seed, point)
    return PolicyEvaluation(artifact, episodes, seed, point, metrics)


# --- a policy artifact as an asset (a pretrained policy to fine-tune) ----------------------


PRETRAINED_DOC = (
    "a policy artifact directory of a deterministic tanh-MLP policy (rlx train --algo bc "
    "--export DIR, or the squeeze-lift-l<N>-sft recipes)"
)


def load_pretrained(directory: Path) -> dict[str, Any]:
    """A deterministic tanh-MLP policy artifact (written by ``bc`` or a fine-tuner of its
    policy) as an asset tree: ``policy`` (the network's params), ``obs_stats`` (the frozen
    observation statistics; empty ones, the identity, when it did not normalise) and
    ``architecture`` (the hidden activation's index in `rlx.learn.networks.ACTIVATIONS`, so `check`
    can compare it with the fine-tuner's config)."""
    from rlx.learn import normalizer
    from rlx.learn.networks import ACTIVATIONS

    meta = read_meta(directory)
    config = meta.get("config", {})
    if not any(k.startswith("policy/") for k in meta["params"]):
        raise RlxError(f"policy artifact {str(directory)!r} holds no 'policy' network params.")
    activation = config.get("activation")
    if activation not in ACTIVATIONS:
        raise RlxError(
            f"policy artifact {str(directory)!r} ({meta['algorithm']}) has no tanh-MLP policy "
            f"with a known activation (got {activation!r}); a pretrained policy comes from bc."
        )
    params = restore_params(directory, meta)
    obs_size = int(meta["observation_size"])
    stats = params.get("obs_stats") or normalizer.as_dict(normalizer.init(obs_size))
    return {
        "policy": params["policy"],
        "obs_stats": {k: np.asarray(v, np.float32) for k, v in stats.items()},
        "architecture": {"activation": np.int32(list(ACTIVATIONS).index(activation))},
    }


def _shapes(params: Any) -> dict[str, tuple[int, ...]]:
    """``{"a/b/c": shape}`` of every leaf (arrays or abstract ones) in layer order."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    return {path_key(path): tuple(np.shape(leaf)) for path, leaf in leaves}


def check_pretrained(tree: Mapping[str, Any], env: Env, config: Any, network: Any) -> None:
    """RlxError unless the pretrained policy's params have exactly the shapes of `network`
    (the fine-tuner's, built for `env` and `config`) and its activation is the config's: the
    error names the observation/action sizes or the hidden widths that differ."""
    from rlx.learn.networks import ACTIVATIONS

    obs_size, act_size = envs.observation_size(env), int(env.action_size)
    want = jax.eval_shape(network.init, jax.random.PRNGKey(0), np.zeros((obs_size,), np.float32))
    want_shapes, have_shapes = _shapes(want), _shapes(tree["policy"])
    kernels = [s for k, s in have_shapes.items() if k.endswith("kernel")]
    if not kernels or have_shapes != want_shapes:
        got_obs = kernels[0][0] if kernels else "?"
        got_act = kernels[-1][-1] if kernels else "?"
        got_hidden = [k[-1] for k in kernels[:-1]]
        raise RlxError(
            f"the pretrained policy takes observations of size {got_obs}, acts with size "
            f"{got_act} through hidden widths {got_hidden}; this run needs observation size "
            f"{obs_size}, action size {act_size}, hidden widths {list(config.hidden)}."
        )
    activation = list(ACTIVATIONS)[int(tree["architecture"]["activation"])]
    if activation != config.activation:
        raise RlxError(
            f"the pretrained policy uses activation {activation!r}; this run's config says "
            f"{config.activation!r} (set activation = {activation!r})."
        )
