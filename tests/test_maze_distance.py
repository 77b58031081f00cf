"""Exact step distances: hand-checked pairs, the boundary-factored table against a full BFS,
and the distances against rollouts in the env (achievable, never beaten)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.envs import maze_distance as md
from rlx.envs.maze import TASKS, Maze, cell_xy

from rlx import envs
from rlx.errors import RlxError


@pytest.fixture(scope="module")
def medium():
    return {k: jnp.asarray(v) for k, v in md.table("medium").items()}


def _d(tables, xy, goal):
    return float(jax.jit(md.distance)(tables, jnp.asarray(xy, jnp.float32),
                                      jnp.asarray(goal, jnp.float32)))  # fmt: skip


def test_hand_checked_pairs(medium):
    # Cell (1, 1) of the medium maze is centred at (0, 0): walls west (1, 0) and south (0, 1)
    # inflated to x, y > -1.3; open to the north (2, 1), east (1, 2) and north-east (2, 2).
    assert _d(medium, (0.0, 0.0), (0.0, 0.0)) == 0
    assert _d(medium, (0.0, 0.0), (1.0, 0.0)) == 5  # 1.0 / 0.2 king moves along x
    assert _d(medium, (0.0, 0.0), (1.0, 0.6)) == 5  # Chebyshev: max(5, 3)
    assert _d(medium, (0.0, 0.0), (0.0, 4.0)) == 20  # straight north to the centre of (2, 1)
    assert _d(medium, (0.0, 0.0), (4.0, 4.0)) == 20  # the free diagonal to the centre of (2, 2)
    assert _d(medium, (0.0, -1.2), (0.0, 1.2)) == 12  # across the cell's free span
    # (1, 5) at (16, 0) is 80 straight steps east, but (1, 3) and (1, 4) are walls: the path
    # goes round through rows 2-3 and is longer.
    assert _d(medium, (0.0, 0.0), (16.0, 0.0)) > 80
    assert _d(medium, (0.0, 0.0), (16.0, 0.0)) == _d(medium, (16.0, 0.0), (0.0, 0.0))


@pytest.mark.slow
def test_boundary_factored_table_equals_full_bfs(medium):
    """From 60 random free lattice points to every free lattice point of the medium maze."""
    free = md.lattice_free(Maze.named("medium"))
    points, _, graph = md._king_graph(free)
    sources = np.random.default_rng(0).choice(len(points), 60, replace=False)
    want = md._bfs(graph, sources)
    want = np.where(np.isfinite(want), want, md.UNREACHABLE)
    xy = np.stack([md.ORIGIN + md.STEP * points[:, 1], md.ORIGIN + md.STEP * points[:, 0]], -1)
    query = jax.jit(jax.vmap(jax.vmap(md.distance, (None, None, 0)), (None, 0, None)))
    got = np.asarray(
        query(medium, jnp.asarray(xy[sources], jnp.float32), jnp.asarray(xy, jnp.float32))
    )
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert want.max() > 100  # long paths are covered


def test_no_policy_beats_the_exact_distance_and_it_is_achieved_by_env_steps(medium):
    """Over the five medium tasks (cell centres are lattice points): the noiseless oracle needs
    at least d - 5 steps to get within 1.0 of the goal (5 = 1.0 / 0.2 steps of slack for the
    success radius); and descending the table's distance field by king moves between free
    lattice points (moves whose end needs no contact), stepped by the env's own dynamics,
    arrives at the goal in exactly d steps."""
    env = envs.make("pointmaze_medium")
    dist = jax.vmap(md.distance, (None, 0, None))
    moves = jnp.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)], jnp.float32)

    def descend(xy, goal):
        commanded = xy + md.STEP * moves
        landed = jax.vmap(env.maze.move, (None, 0))(xy, moves)
        free = jnp.linalg.norm(landed - commanded, axis=-1) < 1e-5
        return moves[jnp.argmin(jnp.where(free, dist(medium, landed, goal), 1e9))]

    def steps_to_goal(start, goal, policy, radius):
        def body(carry, _):
            xy, t, done = carry
            nxt = env.maze.move(xy, policy(xy, goal))
            arrived = jnp.linalg.norm(nxt - goal) <= radius
            return (nxt, t + (1 - done), jnp.maximum(done, arrived.astype(jnp.int32))), None

        (_, t, done), _ = jax.lax.scan(body, (start, 0, 0), None, length=600)
        return t, done

    oracle = lambda xy, goal: env.baseline_policy(jnp.concatenate([xy, goal]))  # noqa: E731
    run = jax.jit(steps_to_goal, static_argnums=(2, 3))
    for start_cell, goal_cell in TASKS["medium"]:
        start, goal = jnp.asarray(cell_xy(start_cell)), jnp.asarray(cell_xy(goal_cell))
        d = _d(medium, start, goal)
        t_oracle, ok = run(start, goal, oracle, 1.0)
        assert ok and int(t_oracle) >= d - 5, (start_cell, goal_cell, d, int(t_oracle))
        t_field, ok = run(start, goal, descend, 1e-3)
        assert ok and int(t_field) == d, (start_cell, goal_cell, d, int(t_field))


def test_env_exposes_the_distance_and_refuses_another_mazes_table():
    env = envs.make("pointmaze_medium")
    tables = md.table("medium")
    assert float(env.exact_distance(tables, jnp.zeros(2), jnp.array([1.0, 0.0]))) == 5
    env.check_distance_table(tables)
    with pytest.raises(RlxError, match="table of another maze"):
        env.check_distance_table(md.table("large"))
    with pytest.raises(RlxError, match="not an rlx maze distance table"):
        env.check_distance_table({"walls": tables["walls"]})
