"""Test setup: JAX's persistent compilation cache (repeat runs skip most compiles), CPU only."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import pytest

CACHE = Path(
    os.environ.get("RLX_TEST_CACHE", Path(__file__).resolve().parents[1] / ".cache" / "jax")
)
jax.config.update("jax_compilation_cache_dir", str(CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(scope="session")
def sft(tmp_path_factory) -> Path:
    """The SFT policy of squeeze_lift_l1 from its recipe (2 demonstrations at noise 0.1, 5,000
    bc steps; 28.5% success over 256 evaluation episodes), shared by HABC's tests and its
    baselines'."""
    from rlx.data import recipes

    return recipes.make("squeeze-lift-l1-sft", tmp_path_factory.mktemp("habc") / "sft")


# The heaviest test modules of the full tier (measured per module), started first: with
# `--dist loadscope` a module runs on one worker, and one of these started last would keep the
# other worker idle for minutes.
HEAVY_FIRST = (
    "test_factorized_pg", "test_recompilation", "test_equivalence", "test_offpolicy",
    "test_bench", "test_policy", "test_sweep", "test_runner", "test_playground", "test_habc",
    "test_offline_gc", "test_coverage_export", "test_brax_baselines", "test_bimanual_mjx",
    "test_envs", "test_sft_ppo", "test_distributed",
)  # fmt: skip


def pytest_collection_modifyitems(config, items):
    """Orders the collected tests so that the HEAVY_FIRST modules come first (in that order),
    keeping the order of tests within a module and of the other modules."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))
