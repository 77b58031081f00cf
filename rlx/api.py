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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from rlx import algorithm, envs
from rlx.errors import RlxError

if TYPE_CHECKING:
    from rlx.runner.execute import Callback
    from rlx.runner.plan import RunPlan


@dataclasses.dataclass
class Result:
    """What `train` returns: the run record and the final training state of every run."""

    record: dict[str, Any]
    state: Any
    """The batched final state (host numpy leaves, leading axis: the runs, in record order)."""
    plan: RunPlan | None = None
    """The plan that was run: its resolved algorithm record and env factory serve `policy` and
    `export_policy` (None: they resolve the record's names again)."""

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
        if self.plan is not None:
            algo, env = self.plan.algorithm, self.plan.make_env()
        else:
            algo = algorithm.get_algorithm(self.record["algo"])
            env = envs.make(self.record["env"], **self.record["env_kwargs"])
        return algo.policy(self.run_state(run), env)

    def export_policy(self, directory: str | Path, run: int = 0) -> Path:
        """Writes run `run`'s trained policy as an artifact directory (`rlx.policy`), which
        `rlx.load_policy` and `rlx eval` read. The artifact names the algorithm and env as
        the plan did: an outside algorithm or env given as an object loads again where that
        name resolves (its ``package.module:ATTR``, or a name registered again)."""
        from rlx import policy as policy_mod

        state = self.run_state(run)
        if self.plan is not None:
            rows = jax.tree.map(lambda x: np.asarray(x)[None], state)
            policy_mod.export_runs(self.plan, [run], rows, self.record["provenance"],
                                   lambda i: Path(directory))  # fmt: skip
            return Path(directory).resolve()
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


def train(
    algo: str | Any,
    env: str | Any,
    *,
    seeds: int | Sequence[int] = 1,
    overrides: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    num_evals: int = 10,
    eval_episodes: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    assets: Mapping[str, str | Path] | None = None,
    runs_per_slice: int | None = None,
    progress: bool = True,
    devices: Sequence[jax.Device] | None = None,
    checkpoint_dir: str | Path | None = None,
    callback: Callback | None = None,
    started: dict[str, Any] | None = None,
    accept_revision_change: bool = False,
    out: str | Path | None = None,
    overwrite: bool = False,
    tensorboard: bool = False,
    wandb: str | None = None,
    export: str | Path | None = None,
    export_run: int | None = None,
) -> Result:
    """Like `rlx.run`, and keeps the final training state of every run (`Result`).

    With `out`, trains into that run directory exactly as ``rlx train --out DIR`` does
    (`rlx.runner.session.train_to_dir`: checkpoints, partial curves and live logs in
    ``OUT.partial`` meanwhile, a resume from there, the run record at the end); `overwrite`,
    `tensorboard`, `wandb` (a project), `export` and `export_run` are that command's options.
    Without `out`, checkpoints go to `checkpoint_dir` (none by default) and nothing is written.
    """
    from rlx import runner
    from rlx.runner.execute import host_rows

    if out is None and (overwrite or tensorboard or wandb is not None or export is not None
                        or export_run is not None):  # fmt: skip
        raise RlxError("overwrite, tensorboard, wandb, export and export_run need out=DIR.")
    if out is not None and checkpoint_dir is not None:
        raise RlxError("give out or checkpoint_dir, not both (with out: OUT.partial/checkpoints).")
    rp = runner.plan(algo, env, seeds=seeds, overrides=overrides, grid=grid, num_evals=num_evals,
                     eval_episodes=eval_episodes, env_kwargs=env_kwargs, assets=assets)  # fmt: skip
    parts: dict[int, Any] = {}

    def keep(ids: list[int], state: Any) -> None:
        parts[ids[0]] = host_rows(state, len(ids))

    common = dict(runs_per_slice=runs_per_slice, progress=progress, devices=devices,
                  callback=callback, started=started,
                  accept_revision_change=accept_revision_change, on_slice_end=keep)  # fmt: skip
    if out is None:
        record = runner.run(rp, checkpoint_dir=checkpoint_dir, **common)
    else:
        from rlx.runner.session import train_to_dir

        record = train_to_dir(rp, out, overwrite=overwrite, tensorboard=tensorboard, wandb=wandb,
                              export=export, export_run=export_run, **common)  # fmt: skip
    if sum(len(jax.tree.leaves(p)[0]) for p in parts.values()) != len(rp.runs):
        raise RlxError(
            "the final states of slices finished before a resume are not kept; train again "
            "into a fresh checkpoint directory to get every run's state."
        )
    ordered = [parts[k] for k in sorted(parts)]
    state = jax.tree.map(lambda *xs: np.concatenate(xs), *ordered)
    return Result(record, state, rp)


def make_train(
    algo: str | algorithm.Algorithm,
    env: str | Any,
    config: Any,
    assets: Mapping[str, Any] | None = None,
) -> Callable[[jax.Array], tuple[Any, dict[str, jax.Array]]]:
    """The pure training function of one run: ``train_fn(key) -> (final state, metrics)``,
    ``init`` followed by a `lax.scan` of ``config.num_updates`` updates; `metrics` are stacked
    per update. `algo` is an algorithm name or record (`rlx.algorithm.get_algorithm`); `env` an
    env name, instance, class or factory (`rlx.envs.resolve_env`; a class or factory is built
    with no keywords); `config` the algorithm's Config (its hyperparameters may be traced,
    e.g. under `vmap`); `assets` arrays by name. Nothing is compiled here::

        train_fn = rlx.make_train("ppo", "pendulum_swingup", config)
        states, metrics = jax.jit(jax.vmap(train_fn))(jax.random.split(key, 8))
    """
    record = algorithm.get_algorithm(algo)
    env_obj = envs.resolve_env(env)[1]()
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
