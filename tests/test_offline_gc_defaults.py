"""The offline goal-conditioned learners' ``Config()`` is the published pointmaze setting: the
config the runner builds with no overrides, the one sweeps/trl.toml runs (but its budget, and
gamma 0.995 on giant), and the values OGBench and the official TRL code publish."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import pytest

from rlx import runner, sweep
from rlx.data import recipes
from rlx.data.assets import Asset

ROOT = Path(__file__).resolve().parent.parent
LEARNERS = ("trl", "gciql", "gcivl", "qrl", "crl", "gcbc")

PUBLISHED: dict[str, dict[str, Any]] = {
    # aoberai/trl hyperparameters.sh, pointmaze-medium-navigate-oraclerep-v0 (agents/trl.py
    # get_config for the rest; its layer_norm covers the actor too).
    "trl": dict(gamma=0.99, lam=0.7, alpha=10.0, expectile=0.7, tau=0.005, learning_rate=3e-4,
                batch_size=1024, actor_hidden=(512,) * 3, value_hidden=(512,) * 3,
                layer_norm=True, actor_layer_norm=True, value_geom_sample=True,
                actor_geom_sample=False, actor_p_curgoal=0.0, actor_p_trajgoal=1.0),
    # OGBench impls/hyperparameters.sh pointmaze-*-navigate lines and impls/agents/*.py
    # get_config (actors without LayerNorm).
    "gciql": dict(gamma=0.99, alpha=0.003, expectile=0.9, tau=0.005, learning_rate=3e-4,
                  batch_size=1024, value_p_curgoal=0.2, value_p_trajgoal=0.5,
                  value_geom_sample=True, actor_p_curgoal=0.0, actor_p_trajgoal=1.0,
                  actor_geom_sample=False, layer_norm=True, actor_layer_norm=False),
    "gcivl": dict(gamma=0.99, alpha=10.0, expectile=0.9, tau=0.005, learning_rate=3e-4,
                  batch_size=1024, value_p_curgoal=0.2, value_p_trajgoal=0.5,
                  value_geom_sample=True, actor_p_curgoal=0.0, actor_p_trajgoal=1.0,
                  actor_geom_sample=False, layer_norm=True, actor_layer_norm=False),
    "qrl": dict(gamma=0.99, alpha=0.0003, eps=0.05, latent_dim=512, iqe_component=8,
                learning_rate=3e-4, batch_size=1024, value_p_curgoal=0.0, value_p_trajgoal=0.0,
                actor_p_curgoal=0.0, actor_p_trajgoal=1.0, actor_geom_sample=False,
                layer_norm=True, actor_layer_norm=False),
    "crl": dict(gamma=0.99, alpha=0.03, latent_dim=512, learning_rate=3e-4, batch_size=1024,
                value_p_curgoal=0.0, value_p_trajgoal=1.0, value_geom_sample=True,
                actor_p_curgoal=0.0, actor_p_trajgoal=1.0, actor_geom_sample=False,
                layer_norm=True, actor_layer_norm=False),
    "gcbc": dict(gamma=0.99, learning_rate=3e-4, batch_size=1024, actor_hidden=(512,) * 3,
                 actor_p_curgoal=0.0, actor_p_trajgoal=1.0, actor_geom_sample=False,
                 actor_layer_norm=False),
}  # fmt: skip
"""Each learner's published pointmaze-medium values, written out from the sources."""


def _module(name: str):
    return importlib.import_module(f"rlx.algos.offline_gc.{name}")


def _differences(got: Any, want: Any) -> dict[str, tuple[Any, Any]]:
    """Field name -> (got, want) where two configs of one class differ."""
    return {f.name: (getattr(got, f.name), getattr(want, f.name))
            for f in dataclasses.fields(want)
            if getattr(got, f.name) != getattr(want, f.name)}  # fmt: skip


@pytest.fixture
def no_asset_builds(monkeypatch):
    """Plans whose assets are placeholders: nothing is built or read."""
    monkeypatch.setattr(recipes, "cached", lambda name, options=None: Path("recipe") / name)
    monkeypatch.setattr(
        importlib.import_module("rlx.runner.plan"), "resolve_assets",
        lambda specs, paths, env, config, owner="": {
            n: Asset(n, str(p), "placeholder") for n, p in paths.items()},
    )  # fmt: skip


@pytest.mark.parametrize("name", LEARNERS)
def test_config_is_what_the_runner_builds_without_overrides(name, no_asset_builds):
    module = _module(name)
    assets = {asset: f"/nowhere/{asset}" for asset in module.ALGORITHM.assets}
    rp = runner.plan(name, "pointmaze_medium", seeds=1, assets=assets)
    assert _differences(rp.base_config, module.Config()) == {}
    assert _differences(module.ALGORITHM.make_config(), module.Config()) == {}


@pytest.mark.parametrize("name", LEARNERS)
def test_config_holds_the_published_pointmaze_values(name):
    config = _module(name).Config()
    got = {field: getattr(config, field) for field in PUBLISHED[name]}
    assert got == PUBLISHED[name]


def test_trl_sweep_runs_the_defaults_but_its_budget_and_giant_gamma(no_asset_builds):
    """sweeps/trl.toml (full profile) changes nothing but total_steps, and gamma on giant."""
    cells = sweep.load(ROOT / "sweeps" / "trl.toml").cells
    assert {c.algo for c in cells} == set(LEARNERS)
    for cell in cells:
        default = _module(cell.algo).Config()
        diff = _differences(cell.plan.base_config, default)
        budget = diff.pop("total_steps", None)
        assert budget is None or budget[0] >= default.total_steps, cell.key
        want = {"gamma": (0.995, 0.99)} if cell.env == "pointmaze_giant" else {}
        assert diff == want, cell.key
