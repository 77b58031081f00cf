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
    """The SFT policy of squeeze_lift_l1 from its recipe (4 demonstrations, 5,000 bc steps;
    25% success over 1,024 evaluation episodes), shared by HABC's tests and its baselines'."""
    from rlx.data import recipes

    return recipes.make("squeeze-lift-l1-sft", tmp_path_factory.mktemp("habc") / "sft")
