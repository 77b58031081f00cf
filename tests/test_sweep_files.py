"""Every committed sweep file is accepted at both its full and its --quick budget, and a cell
whose layers conflict is refused naming the layer (and line) that set each value."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from rlx import sweep
from rlx.data import recipes
from rlx.data.assets import Asset
from rlx.errors import RlxError

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "sweeps").glob("*.toml"))


def _placeholder_assets(specs, paths, env, config, owner=""):
    return {name: Asset(name, str(path), "placeholder") for name, path in paths.items()}


@pytest.fixture
def no_asset_builds(monkeypatch):
    """Asset recipes (datasets, SFT policies) are not built: a sweep file is checked, not run."""
    monkeypatch.setattr(recipes, "cached", lambda name, options=None: Path("recipe") / name)
    plan_module = importlib.import_module("rlx.runner.plan")
    monkeypatch.setattr(plan_module, "resolve_assets", _placeholder_assets)


def test_there_are_committed_sweep_files():
    assert len(FILES) >= 12


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_committed_sweep_file_is_accepted(path, quick, no_asset_builds):
    loaded = sweep.load(path, quick=quick)
    assert loaded.cells and all(c.plan.base_config.num_updates > 0 for c in loaded.cells)


CONFLICT = """
name = "conflict"
algorithms = ["td3"]
environments = ["pendulum_swingup"]
seeds = 1
total_steps = 10_000
num_evals = 2

[settings.td3]
num_envs = 1
unroll_length = 1
utd_ratio = 1.0

[quick]
unroll_length = 5
"""


@pytest.mark.parametrize("quick", [False, True])
def test_a_conflict_names_the_layer_and_line_of_each_value(tmp_path, quick):
    path = tmp_path / "conflict.toml"
    path.write_text(CONFLICT)
    with pytest.raises(RlxError) as err:
        sweep.load(path, quick=quick)
    unroll = "[quick] line 15" if quick else "[settings.td3] line 11"
    first = 10
    assert str(err.value).startswith(
        f"{path}:{first}: cell td3/pendulum_swingup: policy_frequency=2"
    )
    assert str(err.value).endswith(
        f"(set by: num_envs: [settings.td3] line 10; unroll_length: {unroll}; "
        "utd_ratio: [settings.td3] line 12; policy_frequency: td3's default)"
    )
