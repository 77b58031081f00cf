"""The observation normaliser's floor on the standard deviation (`normalizer.MIN_STD`): a
near-constant feature no longer pins the input at the clip, an ordinary one is unchanged."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from rlx.learn import normalizer


def _stats(rng: np.random.Generator) -> normalizer.RunningStats:
    """Statistics of 1,000 rows: feature 0 with std 1e-5 around 1, feature 1 with std 1."""
    batch = np.stack([1.0 + 1e-5 * rng.normal(size=1000), rng.normal(size=1000)], axis=1)
    return normalizer.update(normalizer.init(2), jnp.asarray(batch, jnp.float32))


def test_near_constant_feature_is_floored_and_ordinary_one_unchanged():
    stats = _stats(np.random.default_rng(0))
    obs = stats.mean + jnp.array([0.01, 0.7], jnp.float32)
    z = np.asarray(normalizer.normalize(stats, obs))
    assert abs(z[0]) <= 1.0 + 1e-5, z  # was clipped at 10 without the floor
    assert abs(z[0]) >= 0.99, z  # still the deviation over the floor, not dropped
    var = stats.m2 / (stats.count - 1)
    old = np.clip(np.asarray((obs - stats.mean) / jnp.sqrt(var + 1e-8)), -10, 10)
    assert z[1] == old[1]  # bit for bit the old rule above the floor
    assert old[0] == 10.0  # the defect the floor removes


def test_min_std_is_an_argument():
    stats = _stats(np.random.default_rng(1))
    obs = stats.mean + jnp.array([1e-4, 0.0], jnp.float32)
    small = np.asarray(normalizer.normalize(stats, obs, min_std=1e-3))
    np.testing.assert_allclose(small[0], 0.1, rtol=1e-3)
    np.testing.assert_allclose(np.asarray(normalizer.std(stats))[0], normalizer.MIN_STD)
