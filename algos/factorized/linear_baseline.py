"""Per-action-dimension linear-feature baselines, fitted in closed form (Wu et al. 2018's
development code; rllab's ``LinearFeatureBaseline`` made action-dependent).

Dimension i's baseline is a ridge regression of the return on the features

    phi_i(s, a, t) = [clip(o), clip(o)^2, t/100, (t/100)^2, (t/100)^3, a_-i, a_-i^2]

(``clip`` to [-10, 10], a the executed action in [-1, 1]) plus an unpenalised intercept. Each
feature column is standardised on the fitted batch (zero mean, unit variance), and

    w_i = argmin_w |Phi_i w - (y - ybar)|^2 + lam |w|^2,
    b_i(x) = ybar + phi_i(x) . w_i.

The penalty is relative to the feature Gram's scale: standardised columns give Phi^T Phi a
trace of N d, so its mean non-zero eigenvalue is max(N, d), and lam = ridge * max(N, d) * 10^k.
With ``decades`` > 1, k in {0, ..., decades - 1} is chosen on held-out samples: the batch's
`streams` independent rollouts (sample n belongs to stream n mod streams; with one stream, the
first and second halves of it) are split into two halves, the all-feature ridge fit to one half
is scored by its squared error on the other for every candidate, from one eigendecomposition
of the smaller Gram of the fitted half, and the best penalty is then used on the whole batch.
(Leave-one-out error is no guide here: consecutive samples of one rollout share most of their
return, so a left-out sample's neighbours still carry it.) At m >> 1 the d = p + 2m features of
a few hundred samples can interpolate last batch's returns, and a small fixed penalty then
predicts the next batch worse than a constant; the held-out choice rises with the noise.

All m regressions share every feature but the two of a_i, so they are solved together in the
dual: with K = Phi Phi^T (all features), U_i = [a_i, a_i^2] the two removed columns [N, 2] and
M = K + lam I, dimension i's Gram is ``M - U_i U_i^T`` and by the Woodbury identity

    alpha_i = z + Z_i (I_2 - U_i^T Z_i)^{-1} U_i^T z,       z = M^{-1} y,  Z_i = M^{-1} U_i,
    b_i(x)  = ybar + k(x)^T alpha_i - u_i(x) . (U_i^T alpha_i),    k(x) = Phi phi(x),

one Cholesky factorisation of M (N x N) and 2m right-hand sides for all m fits: cost
O(N^3 + N^2 (p + m)) for p shared features, whatever the dimension. The fit keeps the fitted
batch's inputs (to form k(x)) and the dual weights (`DualFit`).

When there are fewer features d = p + 2m than samples, the primal is cheaper: with
H = (Phi^T Phi + lam I)^{-1} and w = H Phi^T y the all-feature fit, dropping the columns S_i
of a_i, a_i^2 gives (the partitioned inverse)

    b_i(x) = ybar + phi(x) . w - (phi(x)^T H_{:,S_i}) H_{S_i S_i}^{-1} w_{S_i},

i.e. one weight matrix [d, m] for all m baselines (`PrimalFit`, rows S_i of column i zero),
cost O(N d^2 + d^3).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

OBS_CLIP = 10.0
TIME_SCALE = 100.0


class PrimalFit(NamedTuple):
    """m per-dimension linear baselines as one weight matrix (fewer features than samples).

    ``valid`` is 0 before the first fit, when every baseline predicts 0.
    """

    weights: jax.Array  # [p + 2m, m] on the standardised features
    moments: jax.Array  # [2, p + 2m] column means and standard deviations
    intercept: jax.Array  # [] ybar
    valid: jax.Array  # [] 1.0 once fitted


class DualFit(NamedTuple):
    """m per-dimension linear baselines in the dual (more features than samples).

    ``valid`` is 0 before the first fit, when every baseline predicts 0.
    """

    features: jax.Array  # [N, p + 2m] standardised features of the fitted batch
    moments: jax.Array  # [2, p + 2m] column means and standard deviations
    alpha: jax.Array  # [N, m] dual weights
    own: jax.Array  # [2, m] U_i^T alpha_i
    intercept: jax.Array  # [] ybar
    valid: jax.Array  # [] 1.0 once fitted


def raw_features(obs: jax.Array, action: jax.Array, steps: jax.Array) -> jax.Array:
    """The unstandardised features of a flat batch: [N, p + 2m], shared ones first, then a and
    a^2 (a clipped to [-1, 1], as the environment executes it)."""
    o = jnp.clip(obs, -OBS_CLIP, OBS_CLIP)
    t = (steps / TIME_SCALE)[:, None]
    a = jnp.clip(action, -1.0, 1.0)
    return jnp.concatenate([o, o**2, t, t**2, t**3, a, a**2], axis=-1)


def _split(features: jax.Array, m: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    p = features.shape[-1] - 2 * m
    return features[:, :p], features[:, p : p + m], features[:, p + m :]


LinearFit = PrimalFit | DualFit


def _primal(num: int, obs_size: int, m: int) -> bool:
    """True when a batch of `num` samples is fitted in the primal (fewer features)."""
    return 2 * obs_size + 3 + 2 * m <= num


def empty(num: int, obs_size: int, m: int) -> LinearFit:
    """The not-yet-fitted state for batches of `num` samples (every baseline is 0)."""
    p = 2 * obs_size + 3
    z = lambda *s: jnp.zeros(s, jnp.float32)  # noqa: E731
    moments = jnp.stack([z(p + 2 * m), jnp.ones((p + 2 * m,), jnp.float32)])
    if _primal(num, obs_size, m):
        return PrimalFit(z(p + 2 * m, m), moments, z(), z())
    return DualFit(z(num, p + 2 * m), moments, z(num, m), z(2, m), z(), z())


def holdout_split(num: int, streams: int) -> tuple[np.ndarray, np.ndarray]:
    """Static indices (fitted, held out) of a flat batch of `num` samples, sample n from stream
    n mod `streams`: the even streams against the odd ones, or with one stream its two halves."""
    n = np.arange(num)
    held = (n % streams) % 2 == 1 if streams > 1 else n >= num // 2
    return n[~held], n[held]


def holdout_penalty(
    features: jax.Array, y: jax.Array, split: tuple[np.ndarray, np.ndarray], penalties: jax.Array
) -> jax.Array:
    """The penalty among `penalties` [K] whose ridge fit of `y` [N] on `features` [N, d],
    fitted to rows ``split[0]`` (with their own intercept), predicts rows ``split[1]`` with
    the least squared error (module docstring)."""
    chex.assert_shape([y], (features.shape[0],))
    fit_x, fit_y = features[split[0]], y[split[0]]
    held_x, held_y = features[split[1]], y[split[1]]
    offset = fit_y.mean()
    fit_y = fit_y - offset
    n, d = fit_x.shape
    if d <= n:  # w = V diag(1 / (s + lam)) V^T X^T y
        s, vecs = jnp.linalg.eigh(fit_x.T @ fit_x)
        coef, basis = vecs.T @ (fit_x.T @ fit_y), held_x @ vecs
    else:  # w = X^T U diag(1 / (s + lam)) U^T y
        s, vecs = jnp.linalg.eigh(fit_x @ fit_x.T)
        coef, basis = vecs.T @ fit_y, held_x @ (fit_x.T @ vecs)
    s = jnp.maximum(s, 0.0)
    predicted = offset + (coef / (s + penalties[:, None])) @ basis.T  # [K, N_held]
    return penalties[jnp.argmin(jnp.mean((held_y - predicted) ** 2, -1))]


def penalty(
    features: jax.Array, y: jax.Array, ridge: jax.Array, decades: int, streams: int
) -> jax.Array:
    """lam = ridge * max(N, d) * 10^k, k < `decades` chosen on held-out streams (k = 0 when
    decades = 1)."""
    base = ridge * max(features.shape)
    if decades == 1:
        return base
    split = holdout_split(features.shape[0], streams)
    candidates = base * 10.0 ** jnp.arange(decades, dtype=features.dtype)
    return holdout_penalty(features, y, split, candidates)


def fit(
    obs: jax.Array,
    action: jax.Array,
    steps: jax.Array,
    target: jax.Array,
    ridge: jax.Array,
    decades: int = 1,
    streams: int = 1,
) -> LinearFit:
    """All m ridge fits of `target` [N] on the batch's features (module docstring), with the
    penalty ``ridge * max(N, d) * 10^k`` and k < `decades` chosen on held-out streams (sample
    n from rollout n mod `streams`)."""
    n, m = action.shape
    chex.assert_shape([obs], (n, None))
    chex.assert_shape([steps, target], (n,))
    raw = raw_features(obs, action, steps)
    mean, std = raw.mean(0), raw.std(0) + 1e-6
    ybar = target.mean()
    y = target - ybar
    moments = jnp.stack([mean, std])
    features = (raw - mean) / std
    lam = penalty(features, y, ridge, decades, streams)
    if _primal(n, obs.shape[-1], m):
        return _fit_primal(features, y, m, moments, ybar, lam)
    _, act, act_sq = _split(features, m)
    chol = jax.scipy.linalg.cho_factor(features @ features.T + lam * jnp.eye(n))
    solved = jax.scipy.linalg.cho_solve(chol, jnp.concatenate([y[:, None], act, act_sq], 1))
    z, za, zb = solved[:, 0], solved[:, 1 : 1 + m], solved[:, 1 + m :]
    # C_i = I_2 - U_i^T Z_i and r_i = U_i^T z, every dimension at once.
    c11, c12 = 1.0 - jnp.sum(act * za, 0), -jnp.sum(act * zb, 0)
    c21, c22 = -jnp.sum(act_sq * za, 0), 1.0 - jnp.sum(act_sq * zb, 0)
    r1, r2 = act.T @ z, act_sq.T @ z
    det = c11 * c22 - c12 * c21
    s1, s2 = (c22 * r1 - c12 * r2) / det, (c11 * r2 - c21 * r1) / det
    alpha = z[:, None] + za * s1 + zb * s2
    own = jnp.stack([jnp.sum(act * alpha, 0), jnp.sum(act_sq * alpha, 0)])
    return DualFit(features, moments, alpha, own, ybar, jnp.ones(()))


def _fit_primal(
    features: jax.Array, y: jax.Array, m: int, moments: jax.Array, ybar: jax.Array, lam
) -> PrimalFit:
    """The partitioned-inverse weights of all m fits (module docstring)."""
    d = features.shape[-1]
    p = d - 2 * m
    h = jnp.linalg.inv(features.T @ features + lam * jnp.eye(d))
    h = 0.5 * (h + h.T)
    w = h @ (features.T @ y)
    ia, ib = jnp.arange(p, p + m), jnp.arange(p + m, d)
    h_aa, h_ab, h_bb = h[ia, ia], h[ia, ib], h[ib, ib]  # H_{S_i S_i} of every i
    det = h_aa * h_bb - h_ab**2
    wa, wb = w[ia], w[ib]
    v1, v2 = (h_bb * wa - h_ab * wb) / det, (h_aa * wb - h_ab * wa) / det
    weights = w[:, None] - h[:, ia] * v1 - h[:, ib] * v2
    return PrimalFit(weights, moments, ybar, jnp.ones(()))


def predict(fit: LinearFit, obs: jax.Array, action: jax.Array, steps: jax.Array) -> jax.Array:
    """b_i(x_n) for every sample n and dimension i of a flat batch: [N', m]."""
    m = action.shape[-1]
    mean, std = fit.moments
    features = (raw_features(obs, action, steps) - mean) / std
    if isinstance(fit, PrimalFit):
        return fit.valid * (fit.intercept + features @ fit.weights)
    _, act, act_sq = _split(features, m)
    kernel = features @ fit.features.T  # k(x)^T against the fitted batch, [N', N]
    b = kernel @ fit.alpha - act * fit.own[0] - act_sq * fit.own[1]
    return fit.valid * (fit.intercept + b)
