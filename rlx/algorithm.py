"""The algorithm contract and the registry of algorithms.

An algorithm is a module in ``algos/`` (importable as ``rlx.algos.<name>``) that defines:

- ``Config``: a frozen `flax.struct.dataclass` of `static` fields and `hparam` leaves (see
  `rlx.config`), with a ``total_steps`` static field (the env-step budget per run),
  ``steps_per_update`` (a property: env steps consumed by one `update`) and ``validate()``
  raising `rlx.errors.RlxError` for bad values;
- ``init(key, env, config) -> state``: the whole training state as a pytree (params, optimiser
  state, normaliser, env state, RNG, counters, and ``config`` itself, so hyperparameters travel
  with the state and can be vmapped);
- ``update(env, state) -> (state, metrics)``: one training iteration, pure and jittable, fixed
  shapes, `metrics` a flat dict of float32 scalars. Keys ``train/episode_*`` are means over the
  episodes finished in the iteration and are weighted by ``train/episodes`` when aggregated;
- ``policy(state, env) -> act(obs, key, deterministic) -> action``: the acting function (it closes
  over params and normaliser), used for evaluation and export;
- ``DESCRIPTION``: one line for ``rlx list``;
- optionally ``check_env(env, config)``: raises RlxError for environments it cannot run on
  (called when a run is planned, before anything is built).

`env` is the unwrapped `brax.envs.base.Env`; algorithms wrap it themselves with
`rlx.envs.wrap_for_training` (a trace-time, Python-only operation).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rlx.errors import unknown

# name -> "module" or "module:attribute" under rlx.algos (variants built from one module).
ALGORITHMS: dict[str, str] = {
    "ppo": "ppo",
    "td3": "td3",
    "sac": "sac",
    "agency_td3": "agency_transfer:TD3",
    "agency_sac": "agency_transfer:SAC",
    "residual_td3": "residual:TD3",
    "residual_sac": "residual:SAC",
    "baseline": "baseline",
    "factorized_pg": "factorized_pg",
    "fpg_state": "factorized_pg:STATE",
    "fpg_regression": "factorized_pg:REGRESSION",
    "fpg_marginal": "factorized_pg:MARGINAL",
    "fpg_mean_action": "factorized_pg:MEAN_ACTION",
}


def get(name: str) -> ModuleType:
    """The algorithm `name` (a module, or a module-like namespace of a variant), or an RlxError
    listing the registered ones."""
    if name not in ALGORITHMS:
        raise unknown("algorithm", name, ALGORITHMS)
    module, _, attr = ALGORITHMS[name].partition(":")
    found = importlib.import_module(f"rlx.algos.{module}")
    return getattr(found, attr) if attr else found


def names() -> dict[str, str]:
    """Every algorithm name with its one-line description."""
    return {name: get(name).DESCRIPTION for name in ALGORITHMS}
