"""Names from outside rlx: ``package.module:ATTR`` import paths and installed entry points.

An algorithm or environment that does not ship with rlx reaches it by one of three doors: an
object (an `Algorithm` record, an env class or instance), a registry call
(`rlx.register_algorithm`, `rlx.register_env`), or a name. A name is either an installed
package's entry point (groups ``rlx.algorithms`` and ``rlx.envs``, found through
`importlib.metadata`) or ``package.module:ATTR``, the console-script convention: the module is
imported with the current working directory on ``sys.path`` (as uvicorn and gunicorn do; the
``rlx`` console script does not put it there itself) and ``PYTHONPATH`` working as usual.

This module resolves those names to objects; `rlx.algorithm` and `rlx.envs` check what they
get. Every failure is one `RlxError` line naming the string.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import sys
from typing import Any

from rlx.errors import RlxError


def is_import_path(name: str) -> bool:
    """True if `name` has the form ``package.module:ATTR`` (a colon, both sides non-empty)."""
    module, sep, attr = name.partition(":")
    return bool(sep and module and attr)


def kind_of(obj: Any) -> str:
    """What `obj` is, in words: 'a function', 'a class', 'a module', 'an int', ..."""
    if inspect.ismodule(obj):
        return "a module"
    if inspect.isclass(obj):
        return "a class"
    if inspect.isroutine(obj):
        return "a function"
    name = type(obj).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def cwd_on_path() -> None:
    """Puts the current working directory at the front of ``sys.path`` unless it is there
    (as ``''`` or its absolute path), so ``module:ATTR`` finds modules next to the user."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def import_attr(name: str, what: str) -> Any:
    """The object that ``package.module:ATTR`` `name` names (ATTR may be dotted: ``Cls.attr``);
    `what` ('algorithm', 'environment') starts the error. Raises RlxError when the form is
    wrong, the module does not import or the attribute is missing."""
    if not is_import_path(name):
        raise RlxError(f"{what} {name!r} is not of the form package.module:ATTR.")
    module_name, _, attr = name.partition(":")
    cwd_on_path()
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else ""
        raise RlxError(
            f"{what} {name!r}: module {module_name!r} could not be imported "
            f"({type(err).__name__}: {reason})."
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RlxError(f"{what} {name!r}: module {module_name!r} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    return obj


def import_path_of(obj: Any, module_name: str | None = None) -> str | None:
    """``module:QualName`` under which `obj` (a class or function, or with `module_name` any
    object bound to a module-level name there) imports again as the same object; None for
    ``__main__``, local definitions and objects no such name reaches."""
    module_name = module_name or getattr(obj, "__module__", None)
    if not module_name or module_name == "__main__" or module_name not in sys.modules:
        return None
    module = sys.modules[module_name]
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(qualname, str) and "<locals>" not in qualname:
        found: Any = module
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is obj:
            return f"{module_name}:{qualname}"
    try:
        bound = [a for a, v in vars(module).items() if v is obj and not a.startswith("_")]
    except TypeError:  # sys.modules may hold objects other than modules
        return None
    return f"{module_name}:{min(bound)}" if bound else None


def entry_points(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    """The installed entry points of `group` by name (first found wins), not loaded."""
    out: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=group):
        out.setdefault(ep.name, ep)
    return out


def load_entry_point(ep: importlib.metadata.EntryPoint, what: str) -> Any:
    """The object entry point `ep` names; RlxError naming it and its value if it fails."""
    cwd_on_path()
    try:
        return ep.load()
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else ""
        raise RlxError(
            f"{what} {ep.name!r} (entry point {ep.value!r} in group {ep.group!r}) failed to "
            f"load ({type(err).__name__}: {reason})."
        ) from None
