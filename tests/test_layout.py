"""The package's layout: modules of rlx (``rlx/``, ``algos/`` as ``rlx.algos``, ``envs/`` as
``rlx.envs``) build on each other's public names only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"rlx": "rlx", "algos": "rlx.algos", "envs": "rlx.envs"}


def rlx_modules() -> dict[str, Path]:
    """Every module of the installed package by dotted name (a package by its own name)."""
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((package, *parts))] = path
    return out


def is_private(name: str) -> bool:
    """``_name`` but not ``__dunder__``."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_accesses(name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """Where module `name` reads a ``_private`` name of another rlx module: ``from rlx.x import
    _y``, or ``x._y`` / ``rlx.x._y`` with ``x`` bound to an rlx module by an import (anywhere in
    the file)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    bound: dict[str, str] = {}  # local name -> the rlx module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:  # relative: from the package `level - 1` above this one
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                if source in modules and source != name and is_private(alias.name):
                    found.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} from {source} import {alias.name}"
                    )
                if f"{source}.{alias.name}" in modules:
                    bound[alias.asname or alias.name] = f"{source}.{alias.name}"

    def module_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if isinstance(node, ast.Attribute):
            outer = module_of(node.value)
            return f"{outer}.{node.attr}" if outer else None
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            owner = module_of(node.value)
            if owner in modules and owner != name:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner}.{node.attr}")
    return found


def test_no_module_reads_another_modules_private_names():
    """A module that needs another's helper uses a public, documented name (e.g.
    `rlx.algos.ppo.rollout`, not ``ppo._rollout``), so every seam between modules is visible."""
    modules = rlx_modules()
    assert {"rlx.algos.ppo", "rlx.envs", "rlx.runner"} <= set(modules)  # the scan sees them all
    found = [hit for name, path in modules.items() for hit in private_accesses(name, path, modules)]
    assert not found, "private names read across modules:\n" + "\n".join(found)


FAMILIES = ("offpolicy", "offline_gc", "finetune", "factorized")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in `path`, at any depth (lazy imports count);
    ``from package import name`` counts as ``package.name``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def test_the_core_imports_no_algorithm():
    """rlx/ (the runner, training path, learning primitives, data, reporting, CLI) reaches
    algorithms only through the registry (`rlx.algorithm`), never by importing one; rlx.bench
    (benchmarks of particular algorithms) and `rlx finetune` (HABC on outside episodes, a
    command of one algorithm, `rlx.algos.finetune.external`) are the exceptions."""
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "rlx").rglob("*.py"))
        if "bench" not in path.relative_to(ROOT / "rlx").parts
        for line, module in imported_modules(path)
        if (module.startswith("rlx.algos.") or module == "rlx.algos")
        and (path.name, module) != ("cli.py", "rlx.algos.finetune.external")
    ]
    assert not found, "\n".join(found)


def test_a_family_imports_no_other_family():
    """algos/<family>/ builds on the core, its own modules and the flat algorithms (ppo, bc,
    baseline), never on another family."""
    found = []
    for family in FAMILIES:
        for path in sorted((ROOT / "algos" / family).glob("*.py")):
            for line, module in imported_modules(path):
                parts = module.split(".")
                if parts[:2] == ["rlx", "algos"] and len(parts) > 2 and parts[2] in FAMILIES:
                    if parts[2] != family:
                        found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not found, "\n".join(found)


def test_rlx_top_level_stays_small():
    """The core is grouped by concern: at most 20 top-level modules in rlx/."""
    top = sorted(p.name for p in (ROOT / "rlx").glob("*.py"))
    assert len(top) <= 20, top


def test_every_module_imports():
    """Every module of the package imports (the fast tier's guard against a moved or renamed
    import that no other fast test reaches); rlx.bench's Brax worker script is run by path,
    not imported."""
    import importlib

    failed = []
    for name in rlx_modules():
        if name == "rlx.bench.brax_ppo_worker":
            continue
        try:
            importlib.import_module(name)
        except Exception as err:
            failed.append(f"{name}: {type(err).__name__}: {err}")
    assert not failed, "\n".join(failed)
