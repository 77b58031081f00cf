"""GAE against hand-computed arrays and a plain Python loop, with and without jit."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlx.learn.returns import gae


def gae_loop(r, v, nv, term, done, gamma, lam):
    """Reference: the textbook backward recursion, one env at a time, in Python floats."""
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            delta = r[t, n] + gamma * (1 - term[t, n]) * nv[t, n] - v[t, n]
            running = delta + gamma * lam * (1 - done[t, n]) * running
            adv[t, n] = running
    return adv


class GaeTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_hand_computed(self):
        # One env, 3 steps: step 1 times out (bootstraps from V(s'_1)=10), step 2 continues.
        r = jnp.array([[1.0], [2.0], [3.0]])
        v = jnp.array([[0.5], [1.0], [2.0]])
        nv = jnp.array([[1.0], [10.0], [4.0]])
        term = jnp.zeros((3, 1))
        done = jnp.array([[0.0], [1.0], [0.0]])
        g, lam = 0.5, 0.5
        adv, target = self.variant(gae)(r, v, nv, term, done, g, lam)
        # A_2 = 3 + 0.5*4 - 2 = 3; A_1 = 2 + 0.5*10 - 1 = 6 (trace cut);
        # A_0 = (1 + 0.5*1 - 0.5) + 0.25*6 = 2.5
        np.testing.assert_allclose(adv[:, 0], [2.5, 6.0, 3.0], rtol=1e-6)
        np.testing.assert_allclose(target, adv + v, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_termination_does_not_bootstrap(self):
        r = jnp.array([[1.0], [1.0]])
        v = jnp.array([[0.0], [0.0]])
        nv = jnp.array([[5.0], [100.0]])
        term = jnp.array([[0.0], [1.0]])
        adv, _ = self.variant(gae)(r, v, nv, term, term, 0.9, 1.0)
        # A_1 = 1 (no bootstrap on termination); A_0 = 1 + 0.9*5 + 0.9*A_1 = 6.4
        np.testing.assert_allclose(adv[:, 0], [6.4, 1.0], rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_python_loop(self):
        rng = np.random.default_rng(0)
        T, N = 17, 5
        r, v, nv = (rng.normal(size=(T, N)).astype(np.float32) for _ in range(3))
        done = (rng.random((T, N)) < 0.2).astype(np.float32)
        term = done * (rng.random((T, N)) < 0.5)
        adv, _ = self.variant(gae)(*map(jnp.asarray, (r, v, nv, term, done)), 0.97, 0.9)
        np.testing.assert_allclose(
            adv, gae_loop(r, v, nv, term, done, 0.97, 0.9), rtol=1e-4, atol=1e-5
        )


def test_shape_mismatch_is_rejected():
    with pytest.raises(AssertionError):
        gae(
            jnp.zeros((3, 2)),
            jnp.zeros((3, 2)),
            jnp.zeros((3, 1)),
            jnp.zeros((3, 2)),
            jnp.zeros((3, 2)),
            0.9,
            0.9,
        )


def test_traced_hyperparameters_under_vmap():
    r = jnp.ones((4, 2))
    z = jnp.zeros((4, 2))
    adv, _ = jax.vmap(lambda g: gae(r, z, z, z, z, g, 1.0))(jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(adv[0], np.ones((4, 2)))
    np.testing.assert_allclose(adv[1, :, 0], [4.0, 3.0, 2.0, 1.0])
