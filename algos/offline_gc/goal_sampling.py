"""Goal relabelling from trajectory data: which rows become the goals of a sampled transition.

Rows are indices into a trajectory dataset (`rlx.data.trajectories`), ``traj_end[i]`` the last row
of row ``i``'s episode, ``valid`` the rows that are not an episode's last. The goal of a
transition ``i`` is drawn (OGBench's ``GCDataset.sample_goals``) as

- the current state ``j = i`` with probability ``p_cur``;
- a later state of the same trajectory with probability ``p_traj``, either geometric,
  ``j = min(i + Geom(1 - gamma), traj_end[i])`` with ``Geom`` on {1, 2, ...}, or uniform on
  ``{i + 1, ..., traj_end[i]}``;
- a uniformly random row with probability ``p_random = 1 - p_cur - p_traj``.

(OGBench's uniform draw rounds a continuous mix of ``i + 1`` and the end, which gives both
endpoints half weight; here every later row is equally likely.) TRL also draws a midpoint
``k ~ U{i, ..., j - 1}`` (`midpoint`). All functions are pure, vectorised over a batch of rows
and jittable with traced probabilities and discounts.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def sample_rows(key: jax.Array, valid: jax.Array, batch: int) -> jax.Array:
    """`batch` rows drawn uniformly (with replacement) from `valid`."""
    return valid[jax.random.randint(key, (batch,), 0, valid.shape[0])]


def geometric_offsets(key: jax.Array, gamma: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Draws of ``Geom(1 - gamma)`` on {1, 2, ...}: ``P(k) = gamma^(k - 1) (1 - gamma)``, by
    inversion, ``k = 1 + floor(log U / log gamma)`` with ``U ~ U(0, 1]``."""
    u = 1.0 - jax.random.uniform(key, shape)  # in (0, 1]
    k = 1.0 + jnp.floor(jnp.log(u) / jnp.log(gamma))
    return jnp.clip(k, 1.0, 2.0**30).astype(jnp.int32)


def future_rows(
    key: jax.Array, rows: jax.Array, traj_end: jax.Array, gamma: jax.Array, geometric: bool
) -> jax.Array:
    """A later row of each row's trajectory, in ``[i + 1, traj_end[i]]`` (rows must be valid):
    geometric offsets capped at the end, or uniform."""
    chex.assert_rank(rows, 1)
    end = traj_end[rows]
    if geometric:
        return jnp.minimum(rows + geometric_offsets(key, gamma, rows.shape), end)
    return jax.random.randint(key, rows.shape, rows + 1, end + 1)


def goal_rows(
    key: jax.Array, rows: jax.Array, traj_end: jax.Array, size: int,
    p_cur: jax.Array, p_traj: jax.Array, gamma: jax.Array, geometric: bool,
) -> jax.Array:  # fmt: skip
    """Goal rows for `rows` by the mixture of the module docstring (``p_random`` is the rest);
    `size` is the number of rows (random goals are uniform over all of them)."""
    k_future, k_random, k_pick, k_cur = jax.random.split(key, 4)
    future = future_rows(k_future, rows, traj_end, gamma, geometric)
    random = jax.random.randint(k_random, rows.shape, 0, size)
    # Among non-current goals, the trajectory share is p_traj / (1 - p_cur).
    share = jnp.where(p_cur < 1.0, p_traj / jnp.maximum(1.0 - p_cur, 1e-12), 1.0)
    goals = jnp.where(jax.random.uniform(k_pick, rows.shape) < share, future, random)
    return jnp.where(jax.random.uniform(k_cur, rows.shape) < p_cur, rows, goals)


def midpoint(key: jax.Array, rows: jax.Array, goals: jax.Array) -> jax.Array:
    """TRL's subgoal: ``k ~ U{i, ..., j - 1}`` for each pair ``i < j`` (``k = i`` possible)."""
    chex.assert_equal_shape([rows, goals])
    return jax.random.randint(key, rows.shape, rows, goals)
