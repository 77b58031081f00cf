"""Test setup: JAX's persistent compilation cache (repeat runs skip most compiles), CPU only."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

CACHE = Path(
    os.environ.get("RLX_TEST_CACHE", Path(__file__).resolve().parents[1] / ".cache" / "jax")
)
jax.config.update("jax_compilation_cache_dir", str(CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
