"""The documentation site builds with warnings as errors, and the README stays a landing page.

`mkdocs build --strict` (as `make docs` runs it) fails on a broken link, a link to a results
file that does not exist, a `:::` block naming a function that is gone, and (through
docs/hooks.py) a command-reference marker naming a subcommand that is gone.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_hooks():
    """docs/hooks.py as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_site_builds_strict(tmp_path: Path) -> None:
    """The whole site builds with --strict into a temporary directory, with no warning."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert not warnings, "\n".join(warnings)
    site = tmp_path / "site"
    assert (site / "python-api" / "index.html").is_file()
    commands = (site / "commands" / "index.html").read_text()
    assert "rlx train --help" in commands and "--total-steps" in commands
    assert (site / "results" / "quickstart" / "learning_curves.png").is_file()


def test_help_marker_of_a_missing_subcommand_fails() -> None:
    """A command-reference marker naming no subcommand stops the build."""
    from mkdocs.exceptions import PluginError

    hooks = load_hooks()
    assert "rlx train --help" in hooks.expand_help("<!-- rlx-help train -->")
    with pytest.raises(PluginError, match="no-such-command"):
        hooks.expand_help("<!-- rlx-help no-such-command -->")


def test_readme_is_a_landing_page() -> None:
    """At most 200 lines, no commit hashes, and every relative link names an existing file."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert not re.search(r"\b(at|commit|revision) [0-9a-f]{7,40}\b", text)
    for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", text):
        if not re.match(r"[a-z]+://", target):
            assert (ROOT / target).exists(), f"README links a missing file: {target}"
