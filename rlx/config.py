"""Algorithm configurations: frozen dataclasses with *static* fields and *hyperparameter* leaves.

A config class is a `flax.struct.dataclass`. Static fields (network sizes, batch shapes, loop
lengths) are pytree metadata: they fix the compiled program. Hyperparameters (learning rate,
discount, clip range, ...) are pytree leaves: the runner turns them into float32 arrays and can
`vmap` over a grid of them inside one compiled program. Declare fields with `static(...)` or
`hparam(...)`; both carry a one-line doc shown by `rlx list` and in errors.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any, TypeVar

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from rlx.errors import RlxError, unknown

C = TypeVar("C")


class Rollouts:
    """Budget arithmetic of a config with ``total_steps``, ``num_envs`` and ``unroll_length``
    fields (a mixin: it adds no fields)."""

    total_steps: int
    num_envs: int
    unroll_length: int

    @property
    def steps_per_update(self) -> int:
        """Env steps consumed by one update: num_envs * unroll_length."""
        return self.num_envs * self.unroll_length

    @property
    def num_updates(self) -> int:
        """Updates in the budget: total_steps / steps_per_update."""
        return self.total_steps // self.steps_per_update


class GradientSteps:
    """Budget arithmetic of a config counted in gradient steps, with ``total_steps`` and
    ``grad_steps_per_update`` fields (a mixin: it adds no fields)."""

    total_steps: int
    grad_steps_per_update: int

    @property
    def steps_per_update(self) -> int:
        """Gradient steps consumed by one update: grad_steps_per_update."""
        return self.grad_steps_per_update

    @property
    def num_updates(self) -> int:
        """Updates in the budget: total_steps / grad_steps_per_update."""
        return self.total_steps // self.grad_steps_per_update

    def check_gradient_budget(self) -> None:
        """Raises RlxError unless the counts are positive and total_steps is a whole number of
        updates (suggesting the nearest one that is)."""
        require_counts(self, ("total_steps", "grad_steps_per_update", "batch_size"))
        if self.total_steps % self.grad_steps_per_update:
            nearest = max(1, round(self.total_steps / self.grad_steps_per_update))
            raise RlxError(
                f"total_steps={self.total_steps} must be a multiple of grad_steps_per_update="
                f"{self.grad_steps_per_update} (e.g. {nearest * self.grad_steps_per_update})."
            )


class EpisodeBudget:
    """Budget arithmetic of a config counted in online episodes, with ``total_steps`` and
    ``num_envs`` (episodes collected side by side per update) fields (a mixin: it adds no
    fields)."""

    total_steps: int
    num_envs: int

    @property
    def steps_per_update(self) -> int:
        """Episodes consumed by one update: num_envs."""
        return self.num_envs

    @property
    def num_updates(self) -> int:
        """Updates in the budget: total_steps / num_envs."""
        return self.total_steps // self.num_envs

    def check_episode_budget(self) -> None:
        """Raises RlxError unless total_steps is a whole number of updates (suggesting the
        nearest one that is)."""
        if self.total_steps % self.num_envs:
            nearest = max(1, round(self.total_steps / self.num_envs)) * self.num_envs
            raise RlxError(
                f"total_steps={self.total_steps} (episodes) must be a multiple of num_envs="
                f"{self.num_envs} (e.g. {nearest})."
            )


def hparam(default: float, doc: str) -> Any:
    """A hyperparameter field: a pytree leaf (float32 array once batched), vmappable."""
    return flax.struct.field(pytree_node=True, default=default, metadata={"doc": doc})


def static(default: Any, doc: str) -> Any:
    """A static field: part of the compiled program's shape; changing it recompiles."""
    return flax.struct.field(pytree_node=False, default=default, metadata={"doc": doc})


def fields(cls: type) -> dict[str, dataclasses.Field]:
    """The config's fields by name."""
    return {f.name: f for f in dataclasses.fields(cls)}


def is_hparam(field: dataclasses.Field) -> bool:
    """True for hyperparameter leaves, False for static fields."""
    return bool(field.metadata.get("pytree_node", True))


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, 'hparam' or 'static', default, doc) for every field of a config class."""
    return [
        (f.name, "hparam" if is_hparam(f) else "static", f.default, f.metadata.get("doc", ""))
        for f in dataclasses.fields(cls)
    ]


def _parse_value(cls: type, name: str, text: str) -> Any:
    """Parses `text` into the type of field `name`'s default, or raises RlxError."""
    default = fields(cls)[name].default
    try:
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError
            return lowered in ("true", "1")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(int(part) for part in text.split(",") if part.strip())
        if isinstance(default, str):
            return text
    except ValueError:
        pass
    else:
        raise RlxError(f"field {name!r} has unsupported type {type(default).__name__}")
    kind = type(default).__name__ if not isinstance(default, tuple) else "comma-separated ints"
    raise RlxError(f"bad value {text!r} for {name!r}: expected {kind} (default {default!r}).")


def _check_key(cls: type, name: str) -> dataclasses.Field:
    known = fields(cls)
    if name not in known:
        raise unknown(f"{cls.__module__.rsplit('.', 1)[-1]} setting", name, known)
    return known[name]


def parse_assignments(cls: type, pairs: list[str]) -> dict[str, Any]:
    """Parses ``name=value`` strings (from ``--set``) into typed field overrides."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise RlxError(f"bad --set {pair!r}: expected name=value.")
        _check_key(cls, name.strip())
        out[name.strip()] = _parse_value(cls, name.strip(), text.strip())
    return out


def parse_grid(cls: type, pairs: list[str]) -> dict[str, list[Any]]:
    """Parses ``name=v1,v2,...`` strings (from ``--grid``) over hyperparameter fields."""
    out: dict[str, list[Any]] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not text.strip():
            raise RlxError(f"bad --grid {pair!r}: expected name=v1,v2,...")
        field = _check_key(cls, name)
        if not is_hparam(field):
            allowed = [f.name for f in dataclasses.fields(cls) if is_hparam(f)]
            raise RlxError(
                f"cannot grid over static field {name!r} (it changes the compiled program); "
                f"grid keys allowed: {', '.join(allowed)}."
            )
        out[name] = [_parse_value(cls, name, v.strip()) for v in text.split(",")]
    return out


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The product of a grid as a list of override dicts (one empty dict for no grid)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def as_leaves(config: C) -> C:
    """The config with every hyperparameter as a float32 array (no weak types, no Python floats)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.float32), config)


def stack(configs: list[C]) -> C:
    """Stacks configs with equal static fields into one config with a leading run axis."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]), *configs)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of every field (arrays become lists or scalars)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, jax.Array | np.ndarray):
            value = np.asarray(value).tolist()
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def require(config: Any, **rules: tuple[Callable[[float], bool], str]) -> None:
    """Checks hyperparameter ranges: ``name=(predicate, 'allowed')`` for each field.

    Raises RlxError naming the first field whose value (every value of a grid) fails its
    predicate, with the allowed range.
    """
    for name, (ok, allowed) in rules.items():
        values = np.atleast_1d(np.asarray(getattr(config, name), dtype=np.float64))
        if not all(ok(float(v)) for v in values):
            raise RlxError(f"{name} must be {allowed}, got {getattr(config, name)}.")


def require_counts(
    config: Any, positive: tuple[str, ...], non_negative: tuple[str, ...] = ()
) -> None:
    """Raises RlxError for the first static count that is not positive (or >= 0)."""
    for name in positive:
        if int(getattr(config, name)) <= 0:
            raise RlxError(f"{name} must be a positive integer, got {getattr(config, name)}.")
    for name in non_negative:
        if int(getattr(config, name)) < 0:
            raise RlxError(f"{name} must be >= 0, got {getattr(config, name)}.")


def require_budget(config: Any) -> None:
    """Raises RlxError unless total_steps is a whole number of updates (steps_per_update each),
    suggesting the nearest budget that is."""
    per = config.steps_per_update
    if config.total_steps % per:
        nearest = max(1, round(config.total_steps / per)) * per
        raise RlxError(
            f"total_steps={config.total_steps} must be a multiple of num_envs*unroll_length="
            f"{per} (e.g. {nearest})."
        )
