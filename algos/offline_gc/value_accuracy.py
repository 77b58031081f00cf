"""Value accuracy: how well a learned goal-conditioned value predicts the exact distance.

An env with exact distances (an optional capability: ``exact_distance(tables, state, goal)``
and ``check_distance_table(tables)``, e.g. the point mazes) reads its table from the
``"distances"`` asset (`DISTANCES`). At every evaluation point the same `PAIRS` held-out
(state, goal) pairs are drawn from the dataset's validation split (uniformly, with a fixed key,
so every method and seed is scored on the same pairs), and an algorithm's *implied distance*
``d_hat(s, g)`` (e.g. ``log Q / log gamma`` for a value ``Q = gamma^d``) is compared with the
exact one ``d(s, g)``:

    value/spearman        Spearman rank correlation of d_hat and d (ties: average ranks)
    value/mae             mean |d_hat - d| (only for calibrated estimates, in env steps)
    value/mae@<lo>-<hi>   mean |d_hat - d| over the pairs with lo <= d < hi (NaN if none)
    value/mean@<lo>-<hi>  mean d_hat over those pairs

Estimates that are a distance only up to a monotone map (CRL's contrastive logits) report the
rank correlation alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env

from rlx.data.assets import AssetSpec
from rlx.errors import RlxError
from rlx.metrics import MetricRule

PAIRS = 1024
"""Held-out (state, goal) pairs scored at every evaluation point."""
BINS = (0, 25, 50, 100, 150, 200, 300, 450)
"""Edges (env steps) of the distance bins of the binned errors."""
PAIR_KEY = 20251026
"""Seed of the fixed key that draws the pairs."""


def load_table(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a distance-table ``.npz``; raises RlxError for an unreadable file."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: np.asarray(data[name]) for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise RlxError(f"cannot read {str(path)!r} as a distance table (.npz): {err}.") from None


def check_table(tables: Mapping[str, np.ndarray], env: Env, config: Any) -> None:
    """Raises RlxError unless `env` has exact distances and accepts this table."""
    check = getattr(env, "check_distance_table", None)
    if not callable(check):
        raise RlxError(f"{type(env).__name__} has no exact distances; give no 'distances' asset.")
    check(tables)


DISTANCES = AssetSpec(
    doc="exact step-distance table of the env (.npz from `rlx dataset make <maze>-distances`)",
    load=load_table,
    check=check_table,
    required=False,
)
"""The optional ``"distances"`` asset: with it, the value-accuracy metrics are reported."""


def bin_names() -> list[str]:
    """``"<lo>-<hi>"`` of every bin of `BINS`."""
    return [f"{lo}-{hi}" for lo, hi in itertools.pairwise(BINS)]


def average_ranks(x: jax.Array) -> jax.Array:
    """Ranks 1..n of `x` [n], ties sharing their average rank:
    ``rank_i = #{x_j < x_i} + (#{x_j == x_i} + 1) / 2``."""
    chex.assert_rank(x, 1)
    less = jnp.sum(x[None, :] < x[:, None], axis=1)
    equal = jnp.sum(x[None, :] == x[:, None], axis=1)
    return less + (equal + 1) / 2.0


def spearman(x: jax.Array, y: jax.Array) -> jax.Array:
    """Spearman's rank correlation: Pearson's correlation of the average ranks."""
    chex.assert_equal_shape([x, y])
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return jnp.sum(rx * ry) / jnp.sqrt(jnp.maximum(jnp.sum(rx**2) * jnp.sum(ry**2), 1e-12))


def scores(estimate: jax.Array, exact: jax.Array, calibrated: bool) -> dict[str, jax.Array]:
    """The value-accuracy metrics of the module docstring from ``d_hat`` and ``d`` [n]."""
    out = {"value/spearman": spearman(estimate, exact)}
    if not calibrated:
        return out
    error = jnp.abs(estimate - exact)
    out["value/mae"] = error.mean()
    for name, (lo, hi) in zip(bin_names(), itertools.pairwise(BINS), strict=True):
        member = (exact >= lo) & (exact < hi)
        out[f"value/mae@{name}"] = _masked_mean(error, member)
        out[f"value/mean@{name}"] = _masked_mean(estimate, member)
    return out


def _masked_mean(values: jax.Array, member: jax.Array) -> jax.Array:
    """Mean of `values` where `member`, NaN where there is none."""
    count = member.sum()
    return jnp.where(count > 0, jnp.sum(values * member) / jnp.maximum(count, 1), jnp.nan)


def rules(calibrated: bool) -> dict[str, MetricRule]:
    """Metric rules of `scores` (binned metrics may be NaN: an empty bin)."""
    out = {"value/spearman": MetricRule(label="value rank corr.")}
    if calibrated:
        out["value/mae"] = MetricRule(label="value error (steps)")
        for name in bin_names():
            out[f"value/mae@{name}"] = MetricRule(label=f"value error, d {name}", allow_nan=True)
            out[f"value/mean@{name}"] = MetricRule(
                label=f"value estimate, d {name}", allow_nan=True
            )
    return out


def held_out_pairs(val_states: jax.Array, n: int = PAIRS) -> tuple[jax.Array, jax.Array]:
    """`n` (state, goal-state) pairs drawn uniformly from the validation states, with the
    fixed key `PAIR_KEY`."""
    k_s, k_g = jax.random.split(jax.random.PRNGKey(PAIR_KEY))
    size = val_states.shape[0]
    return (val_states[jax.random.randint(k_s, (n,), 0, size)],
            val_states[jax.random.randint(k_g, (n,), 0, size)])  # fmt: skip


Estimator = Callable[[Any, Env, jax.Array, jax.Array], jax.Array]
"""``estimate(state, env, states [n, S], goals [n, G]) -> d_hat [n]``: an algorithm's implied
distance from its training state."""


def diagnostics(estimate: Estimator, calibrated: bool):
    """An `rlx.algorithm.Algorithm.diagnostics` function: the value-accuracy `scores` of
    `estimate`, or no metrics when the run has no ``"distances"`` asset or no validation
    split."""
    from rlx.envs.goals import require_goal_layout

    def run(state: Any, env: Env, assets: Mapping[str, Any] | None, key: jax.Array) -> dict:
        assets = assets or {}
        if "distances" not in assets or assets["dataset"]["val_observations"].shape[0] == 0:
            return {}
        layout = require_goal_layout(env, "value accuracy")
        states, goal_states = held_out_pairs(jnp.asarray(assets["dataset"]["val_observations"]))
        goals = layout.goal_of(goal_states)
        exact = jax.vmap(lambda s, g: env.exact_distance(assets["distances"], s, g))(states, goals)
        return scores(estimate(state, env, states, goals), exact, calibrated)

    return run
