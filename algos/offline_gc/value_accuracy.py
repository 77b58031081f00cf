"""Value accuracy: how well a learned goal-conditioned value predicts the exact distance.

An env with exact distances (an optional capability: ``exact_distance(tables, state, goal)``
and ``check_distance_table(tables)``, e.g. the point mazes) reads its table from the
``"distances"`` asset (`DISTANCES`). At every evaluation point two fixed sets of held-out pairs
are drawn from the dataset's validation split (with a fixed key, so every method and seed is
scored on the same pairs):

- *uniform* pairs: a state ``s`` and a goal state ``g``, each uniform over the split;
- *trajectory* pairs: a row ``i`` and a later row ``j`` of the same validation episode, the
  offset ``j - i`` log-uniform over ``1..(episode end - i)`` (every scale from one step to the
  episode's length is represented). ``j - i`` is what the data's behaviour took; the exact
  distance ``d(s_i, g_j) <= j - i`` is what an optimal policy takes.

A *read-out* turns a training state into an implied distance ``d_hat(s, g)`` (e.g.
``log Q / log gamma`` for ``Q = gamma^d``; `Estimator`), from the state, the goal and the
dataset action at ``s``. An algorithm may have several (TRL: its critic at the dataset action
and at its actor's action); ensembles are read through the mean of their members' values
(probabilities for a sigmoid critic, values for V). The first read-out's metrics are named
``value/...``, another read-out ``<name>``'s ``value_<name>/...``:

    spearman            Spearman rank correlation of d_hat and d on the uniform pairs
    mae                 mean |d_hat - d| on the uniform pairs (calibrated read-outs only, steps)
    mae@<lo>-<hi>       mean |d_hat - d| over all pairs with lo <= d < hi (NaN if none)
    median@<lo>-<hi>    median d_hat over those pairs (the resolved-horizon read-out)
    traj_mae_opt        mean |d_hat - d| on the trajectory pairs (error against the optimum)
    traj_mae_offset     mean |d_hat - (j - i)| on them (error against the data's behaviour)
    traj_mean           mean d_hat on them

and, once per run, the pairs' own figures ``value/exact_median@<lo>-<hi>`` (median d per bin),
``value/traj_mean_opt`` (mean d) and ``value/traj_mean_offset`` (mean j - i). An estimate that
sits between the last two is biased towards the behaviour (an expectile below 1 on noisy data
does that by design); the gap to its own objective's target is fitting error.

Read-outs that are a distance only up to a monotone map (CRL's contrastive logits) report the
rank correlation alone. `rlx.report.horizon` summarises the binned medians as a resolved
horizon (``rlx horizon``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
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
"""Held-out pairs of each kind (uniform, trajectory) scored at every evaluation point."""
BINS = (0, 10, 20, 40, 80, 160, 320, 640)
"""Edges (env steps) of the distance bins of the binned metrics: doubling widths, so a
horizon read on a log axis has one bin per octave."""
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


@chex.dataclass(frozen=True)
class HeldOut:
    """The held-out pairs of one evaluation: uniform pairs first, then trajectory pairs.

    ``states [2n, S]``, ``goals [2n, G]``, ``actions [2n, A]`` (the dataset action at each
    state), ``exact [2n]`` (the exact distance d), ``offsets [n]`` (j - i of the trajectory
    pairs)."""

    states: jax.Array
    goals: jax.Array
    actions: jax.Array
    exact: jax.Array
    offsets: jax.Array


def pair_rows(ends: jax.Array, n: int = PAIRS) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Rows of the held-out pairs of a validation split whose row ``r`` ends its episode at
    ``ends[r]`` (every episode at least two rows): (uniform states [n], uniform goals [n],
    trajectory rows i and j [2, n]) with ``j - i`` log-uniform over ``1..ends[i] - i``
    (``floor(m^u)``, ``u ~ U[0, 1)``, ``m = ends[i] - i + 1``), drawn with `PAIR_KEY`."""
    chex.assert_rank(ends, 1)
    size = ends.shape[0]
    k_s, k_g, k_i, k_u = jax.random.split(jax.random.PRNGKey(PAIR_KEY), 4)
    uniform_s = jax.random.randint(k_s, (n,), 0, size)
    uniform_g = jax.random.randint(k_g, (n,), 0, size)
    i = jax.random.randint(k_i, (n,), 0, size)
    i = jnp.where(i >= ends[i], i - 1, i)  # an episode's last row starts no pair
    span = (ends[i] - i).astype(jnp.float32)
    u = jax.random.uniform(k_u, (n,))
    offset = jnp.clip(jnp.floor((span + 1.0) ** u), 1.0, span).astype(jnp.int32)
    return uniform_s, uniform_g, jnp.stack([i, i + offset])


def held_out(data: Mapping[str, jax.Array], env: Env, tables: Any, n: int = PAIRS) -> HeldOut:
    """The `HeldOut` pairs of a loaded dataset's validation split (``val_observations``,
    ``val_actions``, ``val_traj_end``) with their exact distances from the env's table."""
    from rlx.envs.goals import require_goal_layout

    layout = require_goal_layout(env, "value accuracy")
    obs, actions = data["val_observations"], data["val_actions"]
    s, g, (i, j) = pair_rows(data["val_traj_end"], n)
    rows, goal_rows = jnp.concatenate([s, i]), jnp.concatenate([g, j])
    states, goals = obs[rows], layout.goal_of(obs[goal_rows])
    exact = jax.vmap(lambda a, b: env.exact_distance(tables, a, b))(states, goals)
    return HeldOut(states=states, goals=goals, actions=actions[rows], exact=exact,
                   offsets=(j - i).astype(jnp.float32))  # fmt: skip


def _masked_mean(values: jax.Array, member: jax.Array) -> jax.Array:
    """Mean of `values` where `member`, NaN where there is none."""
    count = member.sum()
    return jnp.where(count > 0, jnp.sum(values * member) / jnp.maximum(count, 1), jnp.nan)


def _masked_median(values: jax.Array, member: jax.Array) -> jax.Array:
    """Median of `values` where `member`, NaN where there is none."""
    return jnp.nanmedian(jnp.where(member, values, jnp.nan))


def _bins(exact: jax.Array):
    return [(name, (exact >= lo) & (exact < hi))
            for name, (lo, hi) in zip(bin_names(), itertools.pairwise(BINS), strict=True)]  # fmt: skip


def scores(
    estimate: jax.Array, pairs: HeldOut, calibrated: bool, prefix: str = "value"
) -> dict[str, jax.Array]:
    """The metrics of the module docstring for one read-out's ``d_hat [2n]`` on `pairs`."""
    chex.assert_equal_shape([estimate, pairs.exact])
    n = pairs.offsets.shape[0]
    exact_u, estimate_u = pairs.exact[:n], estimate[:n]
    out = {f"{prefix}/spearman": spearman(estimate_u, exact_u)}
    if not calibrated:
        return out
    error = jnp.abs(estimate - pairs.exact)
    out[f"{prefix}/mae"] = error[:n].mean()
    for name, member in _bins(pairs.exact):
        out[f"{prefix}/mae@{name}"] = _masked_mean(error, member)
        out[f"{prefix}/median@{name}"] = _masked_median(estimate, member)
    traj = estimate[n:]
    out[f"{prefix}/traj_mae_opt"] = error[n:].mean()
    out[f"{prefix}/traj_mae_offset"] = jnp.abs(traj - pairs.offsets).mean()
    out[f"{prefix}/traj_mean"] = traj.mean()
    return out


def pair_figures(pairs: HeldOut) -> dict[str, jax.Array]:
    """The pairs' own figures: median exact distance per bin, mean d and j - i of the
    trajectory pairs."""
    n = pairs.offsets.shape[0]
    out = {f"value/exact_median@{name}": _masked_median(pairs.exact, member)
           for name, member in _bins(pairs.exact)}  # fmt: skip
    out["value/traj_mean_opt"] = pairs.exact[n:].mean()
    out["value/traj_mean_offset"] = pairs.offsets.mean()
    return out


def prefix_of(index: int, name: str) -> str:
    """Metric prefix of the read-out `name` at position `index` (``value`` for the first)."""
    return "value" if index == 0 else f"value_{name}"


def rules(readouts: Sequence[str], calibrated: bool) -> dict[str, MetricRule]:
    """Metric rules of `scores` for each read-out name and of `pair_figures` (binned metrics
    may be NaN: an empty bin)."""
    out = {}
    for index, name in enumerate(readouts):
        # The primary read-out's labels name no read-out: a table of several algorithms merges
        # their rules, and each algorithm's primary read-out has its own name.
        prefix, who = prefix_of(index, name), ("" if index == 0 else f" ({name})")
        out[f"{prefix}/spearman"] = MetricRule(label=f"value rank corr.{who}")
        if not calibrated:
            continue
        out[f"{prefix}/mae"] = MetricRule(label=f"value error (steps){who}")
        for b in bin_names():
            out[f"{prefix}/mae@{b}"] = MetricRule(label=f"value error, d {b}{who}", allow_nan=True)
            out[f"{prefix}/median@{b}"] = MetricRule(
                label=f"median estimate, d {b}{who}", allow_nan=True
            )
        out[f"{prefix}/traj_mae_opt"] = MetricRule(label=f"in-episode error vs optimal{who}")
        out[f"{prefix}/traj_mae_offset"] = MetricRule(label=f"in-episode error vs data{who}")
        out[f"{prefix}/traj_mean"] = MetricRule(label=f"in-episode mean estimate{who}")
    if calibrated:
        for b in bin_names():
            out[f"value/exact_median@{b}"] = MetricRule(label=f"median d, d {b}", allow_nan=True)
        out["value/traj_mean_opt"] = MetricRule(label="in-episode mean optimal distance")
        out["value/traj_mean_offset"] = MetricRule(label="in-episode mean data steps")
    return out


Estimator = Callable[[Any, Env, jax.Array, jax.Array, jax.Array], jax.Array]
"""``estimate(state, env, states [n, S], goals [n, G], actions [n, A]) -> d_hat [n]``: a
read-out of an algorithm's implied distance from its training state (``actions``: the dataset
action at each state)."""


def diagnostics(readouts: Mapping[str, Estimator], calibrated: bool):
    """An `rlx.algorithm.Algorithm.diagnostics` function: the `scores` of every read-out and
    the `pair_figures`, or no metrics when the run has no ``"distances"`` asset or no
    validation split."""

    def run(state: Any, env: Env, assets: Mapping[str, Any] | None, key: jax.Array) -> dict:
        assets = assets or {}
        data = assets.get("dataset", {})
        if "distances" not in assets or data["val_actions"].shape[0] == 0:
            return {}
        pairs = held_out(data, env, assets["distances"])
        out = pair_figures(pairs) if calibrated else {}
        for index, (name, estimate) in enumerate(readouts.items()):
            d_hat = estimate(state, env, pairs.states, pairs.goals, pairs.actions)
            out.update(scores(d_hat, pairs, calibrated, prefix_of(index, name)))
        return out

    return run
