"""Every Python code block of the README, the docs and examples/README.md runs, at a tiny
budget: each call is first validated with the arguments as written (a budget the block's own
algorithm refuses fails the test), then executed with the budget cut to the fewest updates
the plan allows (``num_evals`` updates, or one for `rlx.make_train`)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
from pathlib import Path

import pytest

import rlx
from rlx import api, runner

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    """(id, code) of every ```python block, e.g. ('docs/getting-started.md#2', ...)."""
    out = []
    for page in PAGES:
        for i, match in enumerate(FENCE.finditer(page.read_text()), 1):
            out.append((f"{page.relative_to(ROOT)}#{i}", match.group(1)))
    return out


BLOCKS = blocks()


def test_the_pages_have_code_blocks():
    assert len(BLOCKS) >= 6


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """Runs a block in a fresh directory holding a copy of examples/ (importable), with plans
    and make_train cut to a tiny budget after their arguments are validated as written."""
    plan, make_train = runner.plan, api.make_train

    def small_plan(algo, env, **kwargs):
        rp = plan(algo, env, **kwargs)  # validated as written
        base = rp.base_config
        cut = base.replace(total_steps=base.steps_per_update * rp.num_evals)
        return dataclasses.replace(rp, base_config=cut)

    def small_train(algo, env, config, assets=None):
        make_train(algo, env, config, assets)  # validated as written
        return make_train(algo, env, config.replace(total_steps=config.steps_per_update), assets)

    monkeypatch.setattr(runner, "plan", small_plan)
    monkeypatch.setattr(api, "make_train", small_train)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path / "examples")
    monkeypatch.syspath_prepend(str(tmp_path / "examples"))
    yield
    for name in ("reinforce", "point_env"):
        sys.modules.pop(name, None)


@pytest.mark.slow
@pytest.mark.parametrize("code", [c for _, c in BLOCKS], ids=[i for i, _ in BLOCKS])
def test_code_block_runs(code, tiny):
    namespace = {"rlx": rlx}
    exec(compile(code, "<doc block>", "exec"), namespace)
