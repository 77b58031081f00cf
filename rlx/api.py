"""The Python API: train and keep the trained states, or build the pure training function.

- `train(algo, env, ...) -> Result`: the runner (every seed x grid point in one program) plus
  the final batched training state; ``result.policy(run=i)`` acts with run i's policy and
  ``result.export_policy(dir, run=i)`` writes it as an artifact (`rlx.load_policy`).
- `make_train(algo, env, config, assets) -> train_fn(key) -> (state, metrics)`: the pure,
  PureJaxRL-style function (init, then a `lax.scan` of every update) for people who want to
  `jit`/`vmap` it themselves.
- `configure(...)`: JAX's persistent compilation cache and matmul precision, as the CLI sets them.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlx import algorithm, envs
from rlx.errors import RlxError


@dataclasses.dataclass
class Result:
    """What `train` returns: the run record and the final training state of every run."""

    record: dict[str, Any]
    state: Any
    """The batched final state (host numpy leaves, leading axis: the runs, in record order)."""

    @property
    def runs(self) -> int:
        """Number of runs (seeds x grid points)."""
        return len(self.record["runs"])

    def run_state(self, run: int = 0) -> Any:
        """The final training state of run `run`."""
        if not 0 <= run < self.runs:
            raise RlxError(f"run {run} is out of range: this result has runs 0..{self.runs - 1}.")
        return jax.tree.map(lambda x: x[run], self.state)

    def policy(self, run: int = 0) -> Callable[..., jax.Array]:
        """``act(obs, key, deterministic)`` of run `run`'s trained policy (jittable)."""
        algo = algorithm.get(self.record["algo"])
        env = envs.make(self.record["env"], **self.record["env_kwargs"])
        return algo.policy(self.run_state(run), env)

    def export_policy(self, directory: str | Path, run: int = 0) -> Path:
        """Writes run `run`'s trained policy as an artifact directory (`rlx.policy`), which
        `rlx.load_policy` and `rlx eval` read."""
        from rlx import policy as policy_mod

        state = self.run_state(run)
        rec, budget = self.record, self.record["budget"]
        algo = algorithm.get(rec["algo"])
        row = rec["runs"][run]
        config = policy_mod.rebuild_config(algo, {**rec["config"], **row["grid_point"]})
        info = policy_mod.run_info(run, row["seed"], row["grid_point"], budget["num_evals"],
                                   budget["eval_episodes"])  # fmt: skip
        return policy_mod.export_policy(
            directory, rec["algo"], rec["env"], rec["env_kwargs"], config,
            algo.policy_params(state), rec["provenance"], info,
        )  # fmt: skip


def train(algo: str, env: str, **kwargs: Any) -> Result:
    """Like `rlx.run`, and keeps the final training state of every run (`Result`)."""
    from rlx import runner
    from rlx.runner.execute import host_rows

    plan_keys, run_keys = _keywords(kwargs, exclude={"on_slice_end"})
    rp = runner.plan(algo, env, **{k: v for k, v in kwargs.items() if k in plan_keys})
    parts: dict[int, Any] = {}

    def keep(ids: list[int], state: Any) -> None:
        parts[ids[0]] = host_rows(state, len(ids))

    record = runner.run(rp, on_slice_end=keep, **{k: v for k, v in kwargs.items() if k in run_keys})
    if sum(len(jax.tree.leaves(p)[0]) for p in parts.values()) != len(rp.runs):
        raise RlxError(
            "the final states of slices finished before a resume are not kept; train again "
            "into a fresh checkpoint directory to get every run's state."
        )
    ordered = [parts[k] for k in sorted(parts)]
    state = jax.tree.map(lambda *xs: np.concatenate(xs), *ordered)
    return Result(record, state)


def _keywords(kwargs: Mapping[str, Any], exclude: set[str] = frozenset()) -> tuple[set, set]:
    """The keywords of `rlx.runner.plan` and `rlx.runner.run`; raises TypeError for others."""
    from rlx import runner

    plan_keys = set(inspect.signature(runner.plan).parameters) - {"algo", "env"}
    run_keys = set(inspect.signature(runner.run).parameters) - {"rp"} - exclude
    extra = set(kwargs) - plan_keys - run_keys
    if extra:
        raise TypeError(
            f"unexpected keyword(s) {', '.join(sorted(extra))}; "
            f"allowed: {', '.join(sorted(plan_keys | run_keys))}."
        )
    return plan_keys, run_keys


def make_train(
    algo: str, env: Any, config: Any, assets: Mapping[str, Any] | None = None
) -> Callable[[jax.Array], tuple[Any, dict[str, jax.Array]]]:
    """The pure training function of one run: ``train_fn(key) -> (final state, metrics)``,
    ``init`` followed by a `lax.scan` of ``config.num_updates`` updates; `metrics` are stacked
    per update. `env` is an env object or name; `config` the algorithm's Config (its
    hyperparameters may be traced, e.g. under `vmap`); `assets` arrays by name. Nothing is
    compiled here::

        train_fn = rlx.make_train("ppo", "pendulum_swingup", config)
        states, metrics = jax.jit(jax.vmap(train_fn))(jax.random.split(key, 8))
    """
    record = algorithm.get(algo)
    env_obj = envs.make(env) if isinstance(env, str) else env
    config.validate()
    record.check_env(env_obj, config)

    def train_fn(key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        state = record.init(key, env_obj, config, assets)

        def body(s, _):
            return record.update(env_obj, s, assets)

        return jax.lax.scan(body, state, None, length=config.num_updates)

    return train_fn


def configure(
    compilation_cache: str | Path | None = None,
    matmul_precision: str | None = None,
) -> None:
    """JAX's persistent compilation cache directory (compiles of 1 s or more are kept) and the
    default matmul precision ('default', 'high' or 'highest'), as ``rlx`` commands set them."""
    if compilation_cache:
        jax.config.update("jax_compilation_cache_dir", str(compilation_cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    if matmul_precision is not None:
        allowed = ("default", "high", "highest")
        if matmul_precision not in allowed:
            raise RlxError(
                f"matmul_precision must be one of {', '.join(allowed)}, got {matmul_precision!r}."
            )
        value = None if matmul_precision == "default" else matmul_precision
        jax.config.update("jax_default_matmul_precision", value)
