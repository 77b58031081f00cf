"""Asset recipes: named, deterministic ways to build an asset file (a dataset, a distance table).

``rlx dataset make NAME --out PATH`` runs recipe ``NAME`` (`make`); a sweep file names an asset
as ``"make:NAME"`` and `cached` builds it once into the asset cache
(``$RLX_CACHE/assets``, default ``~/.cache/rlx/assets``) under a directory named by the
recipe, its version and its options, and reuses it afterwards. Either way the run record holds
the asset's path and content hash (`rlx.data.assets`). A recipe's ``version`` changes whenever its
generator changes, so a cache never serves data of older code under a newer name.

The recipes themselves live with the environments (`rlx.envs.recipes`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from rlx import files
from rlx.errors import RlxError, unknown

PREFIX = "make:"
"""A sweep file's asset value ``"make:NAME"`` names recipe NAME instead of a path."""


@dataclasses.dataclass(frozen=True)
class Options:
    """What a recipe may be told; 0 / None leave the recipe's own default."""

    seed: int = 0
    episodes: int = 0
    steps: int = 0
    noise: float | None = None

    def tag(self) -> str:
        """A filesystem-safe label of the options (part of a cache directory's name)."""
        parts = [f"seed{self.seed}"]
        if self.episodes:
            parts.append(f"e{self.episodes}")
        if self.steps:
            parts.append(f"s{self.steps}")
        if self.noise is not None:
            parts.append(f"n{self.noise:g}")
        return "-".join(parts)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One way to build an asset."""

    name: str
    doc: str
    build: Callable[[Path, Options], None]
    """``build(out, options)`` writes the asset at `out` (a path that does not exist yet)."""
    version: int = 1
    takes: tuple[str, ...] = ()
    """Options besides ``seed`` that it reads (others given are refused)."""
    suffix: str = ""
    """The file suffix of what it writes ('' for a directory)."""


def registry() -> dict[str, Recipe]:
    """Every recipe by name."""
    from rlx.envs.recipes import RECIPES

    return RECIPES


def get(name: str) -> Recipe:
    """The recipe `name`, or an RlxError with close matches."""
    found = registry()
    if name not in found:
        raise unknown("dataset recipe", name, found)
    return found[name]


def _check_options(recipe: Recipe, options: Options) -> None:
    for field in ("episodes", "steps", "noise"):
        value = getattr(options, field)
        if value not in (0, None) and field not in recipe.takes:
            raise RlxError(f"recipe {recipe.name!r} takes no --{field}.")
    if options.seed < 0 or options.episodes < 0 or options.steps < 0:
        raise RlxError("seed, episodes and steps must be >= 0.")
    if options.noise is not None and not options.noise >= 0:
        raise RlxError(f"noise must be a standard deviation >= 0, got {options.noise}.")


def make(name: str, out: Path, options: Options = Options(), overwrite: bool = False) -> Path:
    """Builds recipe `name` at `out` atomically (an interrupted build leaves any old `out` as
    it was); refuses an existing `out` unless `overwrite`."""
    recipe = get(name)
    _check_options(recipe, options)
    out = files.check_new(out, overwrite)
    with files.atomic_path(out) as tmp:
        recipe.build(tmp, options)
    return out


def cache_root() -> Path:
    """Where `cached` keeps built assets: ``$RLX_CACHE/assets`` (default ``~/.cache/rlx``)."""
    return Path(os.environ.get("RLX_CACHE", Path.home() / ".cache" / "rlx")) / "assets"


def cached(name: str, options: Options = Options()) -> Path:
    """The asset of recipe `name` in the cache, built first if it is not there."""
    recipe = get(name)
    _check_options(recipe, options)
    out = cache_root() / f"{name}-v{recipe.version}-{options.tag()}{recipe.suffix}"
    if not out.exists():
        print(f"[assets] building {name} ({options.tag()}) into {out}")
        with files.atomic_path(out) as tmp:  # a killed build leaves no half-built asset
            recipe.build(tmp, options)
    return out


def resolve_source(value: str) -> Path:
    """A sweep file's asset value: ``"make:NAME"`` (built into the cache) or a path."""
    if value.startswith(PREFIX):
        return cached(value.removeprefix(PREFIX))
    return Path(value)
