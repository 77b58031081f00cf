"""Small numerical building blocks: running observation statistics against numpy, and the
orthogonal initialiser."""

from __future__ import annotations

import jax
import numpy as np

from rlx.learn import normalizer


def test_running_stats_match_numpy():
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)).astype(np.float32) for n in (7, 50, 1, 200)]
    stats = normalizer.init(4)
    update = jax.jit(normalizer.update)
    for b in batches:
        stats = update(stats, b)
    data = np.concatenate(batches)
    np.testing.assert_allclose(stats.count, len(data))
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.m2 / (len(data) - 1), data.var(0, ddof=1), rtol=1e-4)
    z = normalizer.normalize(stats, data)
    np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(z).std(0), 1.0, atol=1e-2)


def test_identity_before_any_data():
    stats = normalizer.init(3)
    x = np.array([1.0, -2.0, 0.5], np.float32)
    np.testing.assert_allclose(normalizer.normalize(stats, x), x, rtol=1e-6)


def test_orthogonal_init_is_orthonormal_and_scaled():
    import jax.numpy as jnp

    from rlx.learn.networks import orthogonal

    for shape in [(3, 64), (64, 64), (64, 1), (17, 256)]:
        w = np.asarray(orthogonal(2.0)(jax.random.PRNGKey(0), shape)) / 2.0
        gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
        np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-5)
    a = orthogonal()(jax.random.PRNGKey(1), (8, 8))
    b = orthogonal()(jax.random.PRNGKey(2), (8, 8))
    assert not jnp.allclose(a, b)
