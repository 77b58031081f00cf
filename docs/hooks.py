"""MkDocs hooks of the rlx documentation site (named in mkdocs.yml).

Two jobs, both so that ``mkdocs build --strict`` fails when the docs and the code drift apart:

- **Repository files.** Pages are written to read correctly on a repository browser too, so
  they link the repository's own files with ``../`` paths (``../results/trl/table.md``,
  ``../examples/reinforce.py``). `on_files` adds the files under `LINKED` to the site as static
  files (a Markdown table is copied as is, never rendered as a page), and `on_page_markdown`
  rewrites ``](../X`` to the site's copy. A link to a file that does not exist stays unresolved,
  which the strict build reports.
- **The command reference.** ``<!-- rlx-help CMD -->`` in a page becomes the current
  ``rlx CMD --help`` text, taken from `rlx.cli.build_parser` (``dataset make`` names a nested
  one). A marker naming no subcommand fails the build; ``<!-- rlx-help-rest -->`` becomes a
  section for every subcommand that no marker names, so the reference is never incomplete.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
LINKED = ("results", "examples", "sweeps", "envs", "algos")  # repository folders pages link into
SKIP = ("policies",)  # generated, ignored by git
HELP = re.compile(r"<!-- rlx-help ([a-z][a-z -]*?) -->")
REST = "<!-- rlx-help-rest -->"
WIDTH = "100"  # argparse wraps help text at $COLUMNS


class RepositoryFile(File):
    """A repository file copied into the site unchanged (a ``.md`` one included)."""

    def is_documentation_page(self) -> bool:
        """Never rendered: results tables are linked as the files they are."""
        return False


def on_files(files: Files, config) -> Files:
    """Adds every file under the `LINKED` folders as a static file at the same relative path."""
    for folder in LINKED:
        for path in sorted((ROOT / folder).rglob("*")):
            rel = path.relative_to(ROOT)
            if path.is_file() and not set(SKIP) & set(rel.parts) and "__pycache__" not in rel.parts:
                files.append(RepositoryFile(rel.as_posix(), str(ROOT), config["site_dir"], False))
    return files


def subcommands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    """Every subcommand of `parser` by its full name ('train', 'dataset make'), nested ones too."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                found[full] = sub
                found.update(subcommands(sub, f"{full} "))
    return found


def help_block(name: str, parser: argparse.ArgumentParser) -> str:
    """The help text of one subcommand as a fenced block."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        text = parser.format_help()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return f"```text\n$ rlx {name} --help\n{text.rstrip()}\n```"


def expand_help(markdown: str) -> str:
    """Replaces the help markers of a page (see the module docstring)."""
    from rlx.cli import build_parser

    commands = subcommands(build_parser())
    named = set(HELP.findall(markdown))
    unknown = sorted(named - set(commands))
    if unknown:
        raise PluginError(f"rlx-help names no rlx subcommand: {unknown}; known: {sorted(commands)}")
    markdown = HELP.sub(lambda m: help_block(m.group(1), commands[m.group(1)]), markdown)
    if REST in markdown:
        # A parent ('dataset') is covered when all of its children are named.
        rest = [
            name
            for name in commands
            if name not in named and not any(n.startswith(f"{name} ") for n in named)
        ]
        sections = [f"### rlx {name}\n\n{help_block(name, commands[name])}" for name in rest]
        markdown = markdown.replace(REST, "\n\n".join(sections) or "None: every one is above.")
    return markdown


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    """Points repository links at the site's copies and expands the command reference."""
    markdown = re.sub(r"\]\(\.\./(" + "|".join(LINKED) + r")/", r"](\1/", markdown)
    if "<!-- rlx-help" in markdown:
        markdown = expand_help(markdown)
    return markdown
