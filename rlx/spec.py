"""The one override path: every config value, from the command line, a sweep file, a gradvar
study or the Python API, is checked and converted here.

`resolve(algo, overrides, grid)` checks that each key is a field of the algorithm's Config,
converts each value to the field's type (`convert`: text from ``--set`` / ``--grid``, TOML
values, Python values alike), refuses grids over static fields and empty grids, and returns the
typed `Settings`. ``total_steps`` (the budget) is an ordinary override.

A sweep cell's settings are layered in one documented order (`layer`)::

    Config defaults  <  [settings.<algo>]  <  [cell."<algo>/<env>"]  <  --quick overrides

where the --quick overrides are the file's ``[quick]`` table restricted to the algorithm's
fields, plus ``total_steps = quick_total_steps`` when the file sets that key (a file may give
the quick budget either way, not both). Nothing accepted is dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from rlx import config as cfg
from rlx.algorithm import Algorithm
from rlx.errors import RlxError, unknown


@dataclasses.dataclass(frozen=True)
class Settings:
    """Typed, checked overrides of an algorithm's config and a hyperparameter grid."""

    overrides: dict[str, Any]
    grid: dict[str, list[Any]]


def _names(default: Any) -> bool:
    """True for a tuple field of names (its default holds strings), not of ints."""
    return isinstance(default, tuple) and any(isinstance(v, str) for v in default)


def _kind(default: Any) -> str:
    if _names(default):
        return "comma-separated names"
    return "comma-separated ints" if isinstance(default, tuple) else type(default).__name__


def _from_text(default: Any, text: str) -> Any:
    """`text` as the type of `default`; raises ValueError."""
    text = text.strip()
    if isinstance(default, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError
        return text.lower() in ("true", "1")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, tuple):
        parts = [part.strip().strip("'\"") for part in text.strip("[]()").split(",")]
        return tuple(p if _names(default) else int(p) for p in parts if p)
    return text


def convert(config_cls: type, name: str, value: Any, owner: str = "") -> Any:
    """`value` as the type of field `name` of `config_cls`.

    Text is parsed (``"3e-4"``, ``"true"``, ``"64,64"``); ints are accepted for floats; lists
    of ints for tuples; anything else of the wrong type is refused with an RlxError naming the
    field, the value and the expected type.
    """
    default = _field(config_cls, name, owner).default
    try:
        if isinstance(value, str) and not isinstance(default, str):
            return _from_text(default, value)
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
        elif isinstance(default, int):
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif isinstance(default, float):
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif isinstance(default, tuple):
            kind = str if _names(default) else int
            if isinstance(value, list | tuple) and all(
                isinstance(v, kind) and not isinstance(v, bool) for v in value
            ):
                return tuple(value)
        elif isinstance(default, str):
            if isinstance(value, str):
                return value
        else:
            raise RlxError(f"field {name!r} has unsupported type {type(default).__name__}.")
    except ValueError:
        pass
    raise RlxError(
        f"bad value {value!r} for {name!r}: expected {_kind(default)} (default {default!r})."
    )


def _field(config_cls: type, name: str, owner: str = "") -> dataclasses.Field:
    known = cfg.fields(config_cls)
    if name not in known:
        raise unknown(f"{owner} setting".strip(), name, known)
    return known[name]


def resolve(
    algo: Algorithm,
    overrides: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
) -> Settings:
    """Checked, typed settings of `algo` (see the module docstring); raises RlxError."""
    typed = {
        name: convert(algo.Config, name, v, algo.name) for name, v in (overrides or {}).items()
    }
    typed_grid: dict[str, list[Any]] = {}
    for name, values in (grid or {}).items():
        if not cfg.is_hparam(_field(algo.Config, name, algo.name)):
            allowed = [n for n, f in cfg.fields(algo.Config).items() if cfg.is_hparam(f)]
            raise RlxError(
                f"cannot grid over static field {name!r} (it changes the compiled program); "
                f"grid keys allowed: {', '.join(allowed)}."
            )
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise RlxError(f"grid for {name!r} must be a non-empty list of values, got {values!r}.")
        typed_grid[name] = [convert(algo.Config, name, v, algo.name) for v in values]
    return Settings(typed, typed_grid)


def parse_pairs(pairs: Sequence[str], option: str) -> dict[str, str]:
    """``name=value`` strings (``--set``) as {name: text}; the text is converted by `resolve`."""
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise RlxError(f"bad {option} {pair!r}: expected name=value.")
        if name.strip() in out:
            raise RlxError(f"{option} {name.strip()} is given twice; keep one.")
        out[name.strip()] = text.strip()
    return out


def parse_env_pairs(pairs: Sequence[str], option: str) -> dict[str, Any]:
    """Environment keywords from ``name=value`` pairs: true/false as booleans, then integers,
    numbers, or else the text; RlxError for a pair without '='."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise RlxError(f"bad {option} {pair!r}: expected name=value.")
        if text.lower() in ("true", "false"):
            out[name] = text.lower() == "true"
            continue
        try:
            out[name] = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            out[name] = text
    return out


def parse_grid_pairs(pairs: Sequence[str]) -> dict[str, list[str]]:
    """``name=v1,v2,...`` strings (``--grid``) as {name: [text, ...]}."""
    out = {}
    for name, text in parse_pairs(pairs, "--grid").items():
        if not text:
            raise RlxError(f"bad --grid {name}=: expected name=v1,v2,...")
        out[name] = [v.strip() for v in text.split(",")]
    return out


def layer(
    settings: Mapping[str, Any],
    cell: Mapping[str, Any],
    quick: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A sweep cell's overrides: ``[settings.<algo>]`` < ``[cell."<algo>/<env>"]`` < the quick
    overrides (None without --quick); later layers win key by key."""
    return {**settings, **cell, **(quick or {})}
