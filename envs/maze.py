"""OGBench's point-maze geometry: the four layouts, their evaluation tasks, teleporters, the
contact model of a sphere in the maze, and the cell-level oracle.

Layouts (1 = wall; row ``i``, column ``j``) are OGBench's ``locomaze/maze.py`` maps, cell for
cell. Cell ``(i, j)`` has its centre at ``xy = (4 j - 4, 4 i - 4)`` (``y`` grows with ``i``);
a wall cell is a box of half-size 2 around its centre. The agent is a sphere of radius
``RADIUS = 0.7`` whose centre is the state ``(x, y)``.

One env step is OGBench's ``PointEnv.step``: ``xy += 0.2 clip(a, -1, 1)``, velocity 0, then
5 MuJoCo steps of RK4 at dt 0.02 that push the sphere out of any wall it entered. `Maze.move`
computes those 5 steps as MuJoCo does, in pure JAX, for this one model (OGBench's
``point.xml``: two slide joints, mass ``MASS``, default contact parameters):

- contacts: the sphere against each wall box it overlaps (at most 3 can: the side neighbour
  on each axis the centre leans towards, and the diagonal one); the normal ``n`` points from
  the box's nearest point to the centre; ``pos`` is the signed distance (< 0: penetration).
  Two boxes meeting at a seam are two contacts, as in MuJoCo.
- each contact is a pyramidal friction cone (condim 3, friction 1) of 4 rows, Jacobians
  ``n, n, n + t, n - t`` (``t``: the in-plane tangent; the vertical tangent has no joint), each
  a soft inequality with impedance ``d(pos)`` (solimp 0.9, 0.95, 0.001, 0.5, 2), regulariser
  ``R = (1 - d) / d * 4 / MASS``, reference ``aref = -B J v - K d pos`` (solref time constant
  0.02 raised to 2 dt = 0.04 as MuJoCo does, damping ratio 1: ``K = 1 / (0.95 * 0.04)^2``,
  ``B = 2 / (0.95 * 0.04)``). The floor contact has no row (its Jacobian is zero).
- the acceleration minimises MuJoCo's primal cost ``MASS |a|^2 / 2 + sum_r max(0, aref_r - J_r
  a)^2 / (2 R_r)`` (Newton iterations, `NEWTON_ITERATIONS`), evaluated at each of RK4's 4
  stages of each of the 5 steps.

So friction at concave corners and seams is MuJoCo's. Against MuJoCo (float64) this float32
model differs by at most 2e-6 per step on random walks with wall contacts and at pushes into a
concave corner and along a seam (the simpler push-out model it replaces, which had no
friction, was off by up to 0.06 at concave corners and 0.03 at seams); ``tests/test_pointmaze.py``
bounds it against an MJX model of the same geometry. Pushing straight into a wall settles at a
penetration of 0.0443, as MuJoCo does. A batch of steps runs at about 130k steps/s on 2 CPU cores.

The oracle (OGBench's ``get_oracle_subgoal``): breadth-first search over open cells from the
goal's cell; the subgoal is the centre of the side neighbour with the smallest BFS value (the
agent's own cell centre when none is smaller, i.e. in the goal's cell), and the action is the
unit vector towards it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np

LAYOUTS: dict[str, str] = {
    "medium": """
        11111111
        10011001
        10010001
        11000111
        10010001
        10100101
        10001001
        11111111""",
    "large": """
        111111111111
        100001000001
        101101010101
        100000010001
        101111011101
        100101000001
        110101010111
        100100010001
        111111111111""",
    "giant": """
        1111111111111111
        1010000001100001
        1010110101001101
        1000100100010001
        1011101111110101
        1000100010000101
        1110101001010111
        1000100100010001
        1010101111110101
        1011100010001101
        1000001000100001
        1111111111111111""",
    "teleport": """
        111111111111
        100000101001
        110100010011
        110111000001
        100001010101
        101101010101
        101101010101
        100001000101
        111111111111""",
}
"""OGBench's maps (``ogbench/locomaze/maze.py``), 1 = wall."""

TASKS: dict[str, tuple[tuple[tuple[int, int], tuple[int, int]], ...]] = {
    "medium": (((1, 1), (6, 6)), ((6, 1), (1, 6)), ((5, 3), (4, 2)), ((6, 5), (6, 1)),
               ((2, 6), (1, 1))),
    "large": (((1, 1), (7, 10)), ((5, 4), (7, 1)), ((7, 4), (1, 10)), ((3, 8), (5, 4)),
              ((1, 1), (5, 4))),
    "giant": (((1, 1), (10, 14)), ((1, 14), (10, 1)), ((8, 14), (1, 1)), ((8, 3), (5, 12)),
              ((5, 9), (3, 8))),
    "teleport": (((1, 10), (7, 1)), ((1, 1), (7, 10)), ((5, 6), (7, 10)), ((7, 1), (7, 10)),
                 ((5, 6), (7, 1))),
}  # fmt: skip
"""The five evaluation tasks of each maze: (start cell, goal cell)."""

TELEPORTERS: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {
    "teleport": {"in": ((4, 6), (5, 1)), "out": ((1, 7), (6, 1), (6, 10))},
}
"""Teleport maze: entering within `TELEPORT_TRIGGER` of an in-cell's centre moves the agent to
the centre of a uniformly drawn out-cell."""

CELL = 4.0
"""Side of a maze cell."""
OFFSET = 4.0
"""Cell (i, j) is centred at (CELL j - OFFSET, CELL i - OFFSET)."""
RADIUS = 0.7
"""Radius of the agent's sphere."""
STEP = 0.2
"""Largest move per axis per step: xy += STEP * clip(a, -1, 1)."""
MASS = 100.0 * 4.0 / 3.0 * np.pi * RADIUS**3
"""The sphere's mass (MuJoCo density 100), 143.68."""
TIMESTEP = 0.02
"""MuJoCo's step; an env step is SUBSTEPS of them (OGBench's frame_skip)."""
SUBSTEPS = 5
"""MuJoCo steps (RK4) per env step."""
NEWTON_ITERATIONS = 5
"""Newton iterations of the contact solve (4 already reach MuJoCo to float32 precision)."""
_TIMECONST = 2 * TIMESTEP  # solref 0.02, raised to 2 dt by MuJoCo
_IMP_MIN, _IMP_MAX, _IMP_WIDTH = 0.9, 0.95, 0.001  # solimp (midpoint 0.5, power 2)
_STIFF = 1.0 / (_IMP_MAX * _TIMECONST) ** 2  # K of aref (damping ratio 1)
_DAMP = 2.0 / (_IMP_MAX * _TIMECONST)  # B of aref
_DIAG = 4.0 / MASS  # MuJoCo's diagonal approximation of a friction-pyramid edge (friction 1)
TELEPORT_TRIGGER = 1.5
"""Distance to a teleporter's centre that triggers it (OGBench: 1.5 x its radius of 1)."""
START_NOISE = 1.0
"""Starts and goals are a cell centre plus U(-START_NOISE, START_NOISE)^2."""

_SIDES = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (di, dj): east, west, north, south


def layout(name: str) -> np.ndarray:
    """The map of maze `name` as an int array (1 = wall), shape (rows, columns)."""
    rows = [r.strip() for r in LAYOUTS[name].strip().splitlines()]
    return np.array([[int(c) for c in r] for r in rows], dtype=np.int32)


def cell_xy(ij: tuple[int, int] | np.ndarray) -> np.ndarray:
    """Centre (x, y) of cell (i, j) (works on arrays of cells, last axis (i, j))."""
    ij = np.asarray(ij, dtype=np.float32)
    return np.stack([CELL * ij[..., 1] - OFFSET, CELL * ij[..., 0] - OFFSET], axis=-1)


def xy_cell(xy: jax.Array, shape: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
    """The cell (i, j) containing position `xy` (OGBench's ``xy_to_ij``), clipped to the map."""
    i = jnp.floor((xy[..., 1] + OFFSET + CELL / 2) / CELL).astype(jnp.int32)
    j = jnp.floor((xy[..., 0] + OFFSET + CELL / 2) / CELL).astype(jnp.int32)
    return jnp.clip(i, 0, shape[0] - 1), jnp.clip(j, 0, shape[1] - 1)


@dataclasses.dataclass(frozen=True, eq=False)
class Maze:
    """One maze's geometry and precomputed tables (NumPy), with the pure-JAX step and oracle."""

    name: str
    walls: np.ndarray
    """(rows, columns) int, 1 = wall."""

    @classmethod
    @functools.cache
    def named(cls, name: str) -> Maze:
        """The maze `name` (one of LAYOUTS), built once per process."""
        return cls(name, layout(name))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return tuple(self.walls.shape)

    @functools.cached_property
    def free_cells(self) -> np.ndarray:
        """Every open cell (i, j), row-major, shape (n, 2)."""
        return np.argwhere(self.walls == 0).astype(np.int32)

    @functools.cached_property
    def vertex_cells(self) -> np.ndarray:
        """Open cells that are not the middle of a straight corridor (OGBench's dataset goals)."""
        w = self.walls
        keep = []
        for i, j in self.free_cells:
            vertical = w[i - 1, j] == 0 and w[i + 1, j] == 0 and w[i, j - 1] and w[i, j + 1]
            horizontal = w[i, j - 1] == 0 and w[i, j + 1] == 0 and w[i - 1, j] and w[i + 1, j]
            if not (vertical or horizontal):
                keep.append((i, j))
        return np.array(keep, dtype=np.int32)

    @functools.cached_property
    def cell_bfs(self) -> np.ndarray:
        """BFS distances over open cells (4-neighbour): [goal i, goal j, i, j], -1 unreachable
        (and for walls)."""
        rows, cols = self.shape
        out = -np.ones((rows, cols, rows, cols), dtype=np.int32)
        for gi, gj in self.free_cells:
            dist = out[gi, gj]
            dist[gi, gj] = 0
            queue = deque([(gi, gj)])
            while queue:
                i, j = queue.popleft()
                for di, dj in _SIDES:
                    ni, nj = i + di, j + dj
                    if self.walls[ni, nj] == 0 and dist[ni, nj] < 0:
                        dist[ni, nj] = dist[i, j] + 1
                        queue.append((ni, nj))
        return out

    @functools.cached_property
    def next_cell(self) -> np.ndarray:
        """The oracle's subgoal cell: [goal i, goal j, i, j] -> (i', j'), the side neighbour with
        the smallest BFS value towards the goal, or (i, j) itself when none is smaller; ties go
        to the first in OGBench's order (-1, 0), (0, -1), (1, 0), (0, 1)."""
        rows, cols = self.shape
        bfs = self.cell_bfs
        out = np.zeros((rows, cols, rows, cols, 2), dtype=np.int32)
        out[..., 0] = np.arange(rows)[:, None]
        out[..., 1] = np.arange(cols)[None, :]
        for gi, gj in self.free_cells:
            dist = bfs[gi, gj]
            for i, j in self.free_cells:
                best = (i, j)
                for di, dj in ((-1, 0), (0, -1), (1, 0), (0, 1)):
                    ni, nj = i + di, j + dj
                    if self.walls[ni, nj] == 0 and dist[ni, nj] < dist[best]:
                        best = (ni, nj)
                out[gi, gj, i, j] = best
        return out

    def teleporters(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(in-centres [n_in, 2], out-centres [n_out, 2]) or None for mazes without."""
        info = TELEPORTERS.get(self.name)
        if info is None:
            return None
        return cell_xy(np.array(info["in"])), cell_xy(np.array(info["out"]))

    # -- pure JAX ---------------------------------------------------------------------------

    def contact_boxes(self, xy: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The wall boxes a sphere near `xy` can touch: (centres [3, 2], is-wall [3]) of the
        side neighbours of its cell on the side it leans towards on each axis and the diagonal
        one between them (a sphere of radius 0.7 reaches no other cell)."""
        padded = jnp.asarray(np.pad(self.walls, 1, constant_values=1))
        i, j = xy_cell(xy, self.shape)
        centre = jnp.stack([CELL * j - OFFSET, CELL * i - OFFSET]).astype(jnp.float32)
        sj = jnp.where(xy[0] >= centre[0], 1, -1)
        si = jnp.where(xy[1] >= centre[1], 1, -1)
        bi, bj = jnp.stack([i, i + si, i + si]), jnp.stack([j + sj, j, j + sj])
        centres = jnp.stack([CELL * bj - OFFSET, CELL * bi - OFFSET], -1).astype(jnp.float32)
        return centres, padded[bi + 1, bj + 1] > 0

    def move(self, xy: jax.Array, action: jax.Array) -> jax.Array:
        """One step of the sphere: the commanded move STEP * clip(a), then SUBSTEPS MuJoCo RK4
        steps of the contact dynamics from rest (see the module docstring)."""
        x = (xy + STEP * jnp.clip(action, -1.0, 1.0)).astype(jnp.float32)
        boxes = self.contact_boxes(x)
        h = TIMESTEP

        def rk4(carry: tuple, _: None) -> tuple:
            x, v = carry
            a0 = contact_acceleration(boxes, x, v)
            x1, v1 = x + h / 2 * v, v + h / 2 * a0
            a1 = contact_acceleration(boxes, x1, v1)
            x2, v2 = x + h / 2 * v1, v + h / 2 * a1
            a2 = contact_acceleration(boxes, x2, v2)
            x3, v3 = x + h * v2, v + h * a2
            a3 = contact_acceleration(boxes, x3, v3)
            x = x + h / 6 * (v + 2 * v1 + 2 * v2 + v3)
            return (x, v + h / 6 * (a0 + 2 * a1 + 2 * a2 + a3)), None

        (x, _), _ = jax.lax.scan(rk4, (x, jnp.zeros(2, jnp.float32)), None, length=SUBSTEPS)
        return x

    def teleport(self, xy: jax.Array, key: jax.Array) -> jax.Array:
        """`xy`, or a uniformly drawn out-centre when within TELEPORT_TRIGGER of an in-centre."""
        tele = self.teleporters()
        if tele is None:
            return xy
        ins, outs = jnp.asarray(tele[0]), jnp.asarray(tele[1])
        near = jnp.any(jnp.linalg.norm(ins - xy, axis=-1) <= TELEPORT_TRIGGER)
        dest = outs[jax.random.randint(key, (), 0, outs.shape[0])]
        return jnp.where(near, dest, xy)

    def step(self, xy: jax.Array, action: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One env step in OGBench's order: ``(reached, after)``. `reached` is where the move
        (`move`) takes the sphere, the step's observation; `after` is where the next step
        starts and where success is judged: a uniformly drawn out-centre when `reached` is
        within TELEPORT_TRIGGER of an in-centre (teleport maze), else `reached`."""
        reached = self.move(xy, action)
        return reached, self.teleport(reached, key)

    def oracle_direction(self, xy: jax.Array, goal: jax.Array) -> jax.Array:
        """Unit vector from `xy` towards the oracle's subgoal cell centre (zero-safe, as
        OGBench: d / (|d| + 1e-6)); `xy` and `goal` may carry leading batch axes."""
        table = jnp.asarray(self.next_cell)
        gi, gj = xy_cell(goal, self.shape)
        i, j = xy_cell(xy, self.shape)
        nxt = table[gi, gj, i, j]
        sub = jnp.stack([CELL * nxt[..., 1] - OFFSET, CELL * nxt[..., 0] - OFFSET], axis=-1)
        d = sub.astype(jnp.float32) - xy
        return d / (jnp.linalg.norm(d, axis=-1, keepdims=True) + 1e-6)


def contact_rows(
    boxes: tuple[jax.Array, jax.Array], xy: jax.Array, v: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """MuJoCo's constraint rows of the sphere at `xy` moving at `v` against `boxes`
    (`Maze.contact_boxes`): (Jacobians [9, 2], reference accelerations aref [9], weights 1/R
    [9], 0 for a box that is no wall or not touched). Per contact 3 rows ``n, n + t, n - t``,
    the normal row weighted twice (MuJoCo's two edges along the vertical tangent, which has no
    joint, are both the normal row)."""
    centres, wall = boxes
    vec = xy - jnp.clip(xy, centres - CELL / 2, centres + CELL / 2)
    length = jnp.sqrt(jnp.maximum(jnp.sum(vec**2, -1), 1e-18))
    normal = vec / length[:, None]
    tangent = jnp.stack([-normal[:, 1], normal[:, 0]], -1)
    jac = jnp.stack([normal, normal + tangent, normal - tangent], 1).reshape(-1, 2)
    pos = jnp.repeat(length - RADIUS, 3)
    x = jnp.minimum(jnp.abs(pos) / _IMP_WIDTH, 1.0)
    imp = _IMP_MIN + (_IMP_MAX - _IMP_MIN) * jnp.where(x <= 0.5, 2 * x**2, 1 - 2 * (1 - x) ** 2)
    touching = jnp.repeat(wall & (length < RADIUS), 3)
    edges = jnp.tile(jnp.array([2.0, 1.0, 1.0], jnp.float32), centres.shape[0])
    weight = imp / ((1.0 - imp) * _DIAG) * edges * touching
    aref = -_DAMP * (jac @ v) - _STIFF * imp * pos
    return jac, aref, weight


def contact_acceleration(
    boxes: tuple[jax.Array, jax.Array], xy: jax.Array, v: jax.Array
) -> jax.Array:
    """The sphere's acceleration at `xy`, `v`: the minimiser over ``a`` of MuJoCo's primal
    cost ``MASS |a|^2 / 2 + sum_r w_r min(0, J_r a - aref_r)^2 / 2`` (rows: `contact_rows`),
    by NEWTON_ITERATIONS Newton steps from 0 (the cost is piecewise quadratic in 2 variables)."""
    jac, aref, weight = contact_rows(boxes, xy, v)
    a = jnp.zeros(2, jnp.float32)
    for _ in range(NEWTON_ITERATIONS):
        residual = jac @ a - aref
        active = weight * (residual < 0)
        hess = MASS * jnp.eye(2) + (jac.T * active) @ jac
        grad = MASS * a + jac.T @ (active * residual)
        det = hess[0, 0] * hess[1, 1] - hess[0, 1] * hess[1, 0]  # >= MASS^2: hess >= MASS I
        step = jnp.stack([hess[1, 1] * grad[0] - hess[0, 1] * grad[1],
                          hess[0, 0] * grad[1] - hess[1, 0] * grad[0]])  # fmt: skip
        a = a - step / det
    return a
