"""The algorithm contract (`Algorithm`) and the registry of algorithms.

Every module in ``algos/`` (importable as ``rlx.algos.<name>``) exports one `Algorithm` record
(or several, one per variant) built from pure functions:

- ``Config``: a frozen `flax.struct.dataclass` of `static` fields and `hparam` leaves (see
  `rlx.config`), with a ``total_steps`` static field (the budget per run, in the algorithm's
  `Unit`), ``steps_per_update`` / ``num_updates`` properties and ``validate()`` raising
  `rlx.errors.RlxError` for bad values;
- ``init(key, env, config, assets) -> state``: the whole training state as a pytree (params,
  optimiser state, normaliser, env state, replay ring or dataset cursor, RNG, counters, and
  ``config`` itself, so hyperparameters travel with the state and can be vmapped);
- ``update(env, state, assets) -> (state, metrics)``: one training iteration, pure and
  jittable, fixed shapes, `metrics` a flat dict of float32 scalars whose chunk summaries follow
  ``metric_rules(env)`` (`rlx.metrics`);
- ``policy_params(state) -> params``: exactly what the trained policy needs (its network's
  parameters and observation-normaliser statistics; no optimiser state, critics, replay ring
  or env state), as nested dicts of arrays with string keys, so a policy artifact stores it
  keyed by tree path (`rlx.policy`);
- ``make_policy(params, env, config) -> act(obs, key, deterministic) -> action``: the acting
  function built from those params alone. ``Algorithm.policy(state, env)`` is
  ``make_policy(policy_params(state), env, state.config)``: training-time evaluation and an
  exported, reloaded policy run the same code;
- ``check_env(env, config)``: raises RlxError for environments it cannot run on (called when a
  run is planned, before anything is built);
- optionally ``diagnostics(state, env, assets, key) -> metrics``: scalars computed from the
  training state at every evaluation point, inside the evaluation program (e.g. the accuracy of
  a learned value function against exact distances), reported beside the ``eval/`` metrics.

`env` is the unwrapped `brax.envs.base.Env`; algorithms wrap it themselves with
`rlx.envs.training_env` (a trace-time, Python-only operation). `assets` maps the names in
``Algorithm.assets`` to read-only pytrees shared by every run of a batch (`rlx.data.assets`): a
dataset, a pretrained policy. A variant is the same record under another name with other
config defaults (`Algorithm.variant`), not a generated class.

Names (`get_algorithm`): the built-in algorithms (`ALGORITHMS`, under ``rlx.algos``), records
registered with `register_algorithm`, installed packages' entry points (group
``rlx.algorithms``) and ``package.module:ATTR`` naming a record (`rlx.plugins`). A plan given a
record object names it by `name_of`, so its records and artifacts can find it again.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

from brax.envs.base import Env

from rlx import metrics as metric_rules_mod
from rlx import plugins
from rlx.data.assets import AssetSpec
from rlx.errors import RlxError, unknown
from rlx.metrics import MetricRule


class Unit(enum.Enum):
    """What one update consumes: the unit of ``total_steps``, the progress bar, the curves' x
    axis and the throughput figures."""

    ENV_STEPS = "env_steps"
    GRADIENT_STEPS = "gradient_steps"
    EPISODES = "episodes"

    @property
    def label(self) -> str:
        """Human form, e.g. 'env steps'."""
        return self.value.replace("_", " ")


def _accept_any_env(env: Env, config: Any) -> None:
    """The default `check_env`: every environment is accepted."""


def env_episode_rules(env: Env) -> dict[str, MetricRule]:
    """The default `metric_rules`: the episode count, return and each of the env's outcomes."""
    from rlx.envs import outcome_rules

    return metric_rules_mod.episode_rules(outcome_rules(env))


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """One registered algorithm: its config class, pure functions and what they consume."""

    name: str
    description: str
    Config: type
    init: Callable[..., Any]
    update: Callable[..., tuple[Any, dict[str, Any]]]
    policy_params: Callable[[Any], Any]
    """``policy_params(state) -> params``: what the trained policy needs, nested dicts of arrays."""
    make_policy: Callable[[Any, Env, Any], Callable[..., Any]]
    """``make_policy(params, env, config) -> act(obs, key, deterministic) -> action``."""
    check_env: Callable[[Env, Any], None] = _accept_any_env
    unit: Unit = Unit.ENV_STEPS
    metric_rules: Callable[[Env], Mapping[str, MetricRule]] = env_episode_rules
    assets: Mapping[str, AssetSpec] = dataclasses.field(default_factory=dict)
    """Read-only inputs by name (`rlx.data.assets.AssetSpec`); required ones must be given."""
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Config values that differ from the Config class's defaults (a variant's identity)."""
    extras: Mapping[str, Callable[..., Any]] = dataclasses.field(default_factory=dict)
    """Optional capabilities by name, e.g. ``gradient_estimates`` for `rlx gradvar`."""
    diagnostics: Callable[..., dict[str, Any]] | None = None
    """``diagnostics(state, env, assets, key) -> {name: scalar}`` at every evaluation point."""

    def policy(self, state: Any, env: Env) -> Callable[..., Any]:
        """``act(obs, key, deterministic)`` of a training state: `make_policy` of its
        `policy_params` (the same code as a policy loaded from an artifact)."""
        return self.make_policy(self.policy_params(state), env, state.config)

    def make_config(self, **overrides: Any) -> Any:
        """The config of this algorithm with `overrides` on top of its defaults."""
        return self.Config(**{**self.defaults, **overrides})

    def variant(self, name: str, description: str, **defaults: Any) -> Algorithm:
        """The same algorithm under `name` with other config defaults."""
        return dataclasses.replace(
            self, name=name, description=description, defaults={**self.defaults, **defaults}
        )


# name -> "module" or "module:attribute" under rlx.algos; the attribute (default ALGORITHM) is
# an `Algorithm` record.
ALGORITHMS: dict[str, str] = {
    "ppo": "ppo",
    "td3": "offpolicy.td3",
    "sac": "offpolicy.sac",
    "agency_td3": "offpolicy.agency_transfer:TD3",
    "agency_sac": "offpolicy.agency_transfer:SAC",
    "residual_td3": "offpolicy.residual:TD3",
    "residual_sac": "offpolicy.residual:SAC",
    "baseline": "baseline",
    "bc": "bc",
    "habc": "finetune.habc",
    "habc_sft": "finetune.habc:SFT",
    "habc_uniform": "finetune.habc:UNIFORM",
    "habc_awr": "finetune.habc:AWR",
    "habc_naive": "finetune.habc:NAIVE",
    "habc_fixed": "finetune.habc:FIXED",
    "habc_viability": "finetune.habc:VIABILITY",
    "habc_relative": "finetune.habc:RELATIVE",
    "habc_wint0": "finetune.habc:NO_EXPERT_BC",
    "habc_noint": "finetune.habc:NO_INTERVENTIONS",
    "sft_ppo": "finetune.sft_ppo",
    "factorized_pg": "factorized.factorized_pg",
    "fpg_state": "factorized.factorized_pg:STATE",
    "fpg_regression": "factorized.factorized_pg:REGRESSION",
    "fpg_marginal": "factorized.factorized_pg:MARGINAL",
    "fpg_mean_action": "factorized.factorized_pg:MEAN_ACTION",
    "fpg_linear": "factorized.factorized_pg:LINEAR",
    "fpg_oracle": "factorized.factorized_pg:ORACLE",
    "trl": "offline_gc.trl",
    "gciql": "offline_gc.gciql",
    "gcivl": "offline_gc.gcivl",
    "crl": "offline_gc.crl",
    "qrl": "offline_gc.qrl",
    "gcbc": "offline_gc.gcbc",
}


ENTRY_POINTS = "rlx.algorithms"
"""The entry-point group of installed packages' algorithms: ``name = "package.module:ATTR"``,
ATTR an `Algorithm` record (loaded when the name is first asked for, or listed)."""

REGISTERED: dict[str, Algorithm] = {}
"""What `register_algorithm` registered, by name (read it; change it through that function)."""


def register_algorithm(record: Algorithm, *, replace: bool = False) -> Algorithm:
    """Registers `record` under ``record.name`` so every place that takes an algorithm name
    (`rlx.train`, sweep files, ``rlx train``, artifacts) finds it; returns `record`.

    Raises RlxError when `record` is not an `Algorithm`, when its name is a built-in
    algorithm's, or when another record is registered under it (unless `replace`).
    """
    if not isinstance(record, Algorithm):
        raise RlxError(
            f"register_algorithm takes an rlx Algorithm record, got {plugins.kind_of(record)}."
        )
    name = record.name
    if not isinstance(name, str) or not name:
        raise RlxError(f"an algorithm's name must be a non-empty string, got {name!r}.")
    if name in ALGORITHMS:
        raise RlxError(
            f"algorithm name {name!r} is a built-in algorithm's; register it under another "
            "name (Algorithm.variant(name, description) or dataclasses.replace(record, name=...))."
        )
    held = REGISTERED.get(name)
    if held is not None and held is not record and not replace:
        raise RlxError(
            f"algorithm {name!r} is already registered (another record); pass replace=True "
            "to replace it."
        )
    REGISTERED[name] = record
    return record


def get_algorithm(name_or_record: str | Algorithm) -> Algorithm:
    """The `Algorithm` a name stands for: an `Algorithm` record is returned as is; a string is
    a built-in name, a registered one (`register_algorithm`), an installed entry point (group
    ``rlx.algorithms``) or ``package.module:ATTR`` naming a record (imported with the current
    directory on ``sys.path``). Raises RlxError naming the string and what is allowed."""
    if isinstance(name_or_record, Algorithm):
        return name_or_record
    name = name_or_record
    if not isinstance(name, str):
        raise RlxError(
            f"an algorithm is a name or an rlx Algorithm record, got {plugins.kind_of(name)}."
        )
    if name in ALGORITHMS:
        return _builtin(name)
    if name in REGISTERED:
        return REGISTERED[name]
    if plugins.is_import_path(name):
        return _checked(plugins.import_attr(name, "algorithm"), repr(name))
    found = plugins.entry_points(ENTRY_POINTS).get(name)
    if found is None:
        err = unknown("algorithm", name, [*ALGORITHMS, *REGISTERED, *_entry_names()])
        raise RlxError(f"{err} Or name one as package.module:ATTR.")
    obj = plugins.load_entry_point(found, "algorithm")
    return _checked(obj, f"{name!r} (entry point {found.value!r})")


get = get_algorithm
"""The name most of rlx uses for `get_algorithm`."""


def _builtin(name: str) -> Algorithm:
    module, _, attr = ALGORITHMS[name].partition(":")
    found = getattr(importlib.import_module(f"rlx.algos.{module}"), attr or "ALGORITHM")
    if not isinstance(found, Algorithm):
        raise TypeError(f"rlx.algos.{module}.{attr or 'ALGORITHM'} is not an Algorithm record.")
    return found


def _checked(obj: Any, label: str) -> Algorithm:
    """`obj` if it is an Algorithm record, else RlxError saying what it is."""
    if not isinstance(obj, Algorithm):
        raise RlxError(
            f"algorithm {label} is {plugins.kind_of(obj)}, not an rlx Algorithm record "
            "(rlx.algorithm.Algorithm)."
        )
    return obj


def _entry_names() -> list[str]:
    return [n for n in plugins.entry_points(ENTRY_POINTS) if n not in ALGORITHMS]


def import_path(record: Algorithm) -> str | None:
    """A ``module:ATTR`` under which `record` imports again (the same object), found among the
    attributes of the modules that define its functions and Config, then of every imported
    module; None where there is none (a record made in ``__main__`` or inside a function)."""
    modules = [getattr(f, "__module__", None) for f in (record.init, record.update,
               record.make_policy, record.policy_params, record.Config)]  # fmt: skip
    seen: set[str] = set()
    for module in [*modules, *list(sys.modules)]:
        if not module or module in seen:
            continue
        seen.add(module)
        path = plugins.import_path_of(record, module)
        if path is not None:
            return path
    return None


def name_of(record: Algorithm) -> str:
    """The name a plan and its records give `record`: its built-in, registered or entry-point
    name if that name resolves to this very object, else `import_path`, else ``record.name``
    (which only resolves again once registered)."""
    name = record.name
    if name in ALGORITHMS or name in REGISTERED or name in _entry_names():
        try:
            if get_algorithm(name) is record:
                return name
        except RlxError:
            pass
    return import_path(record) or name


def names() -> dict[str, str]:
    """Every algorithm name with its one-line description: built-in, registered, then installed
    entry points (one that fails to load is listed with ``failed to load: <reason>``)."""
    out = {name: _builtin(name).description for name in ALGORITHMS}
    out.update({name: record.description for name, record in REGISTERED.items()})
    for name in _entry_names():
        if name in out:
            continue
        try:
            out[name] = get_algorithm(name).description
        except RlxError as err:
            out[name] = f"failed to load: {err}"
    return out
