"""OGBench's point-maze geometry: the four layouts, their evaluation tasks, teleporters, the
contact model of a sphere in the maze, and the cell-level oracle.

Layouts (1 = wall; row ``i``, column ``j``) are OGBench's ``locomaze/maze.py`` maps, cell for
cell. Cell ``(i, j)`` has its centre at ``xy = (4 j - 4, 4 i - 4)`` (``y`` grows with ``i``);
a wall cell is a box of half-size 2 around its centre. The agent is a sphere of radius
``RADIUS = 0.7`` whose centre is the state ``(x, y)``.

One env step (OGBench's ``PointEnv.step`` followed by 5 MuJoCo substeps of RK4 at dt 0.02,
which push the sphere out of any wall it entered) is modelled as::

    xy'  = xy + 0.2 clip(a, -1, 1)                       # the commanded move
    xy'' = xy' + (1 - K) sum_c p_c(xy') n_c(xy')        # soft-contact recovery

over the contacts ``c`` of the sphere with the walls around its cell: the faces of side
neighbours that are walls and the convex corners of diagonal neighbours that are walls while
both adjacent sides are open; ``p_c`` is the penetration depth ``max(0, R - distance)`` and
``n_c`` the unit normal pointing out of the wall. MuJoCo leaves ``K = 0.17718`` of a step's
penetration (so pushing straight into a wall settles at ``0.2 K / (1 - K) = 0.043``); the
research notes measured this model against MuJoCo at a mean one-step error <= 1.2e-3 (maximum
~0.06 at inner corners), and ``tests/test_pointmaze.py`` bounds it against an MJX model of the
same geometry.

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
RECOVERY_KEEP = 0.17718
"""K: the share of a step's wall penetration that MuJoCo's soft contact leaves."""
TELEPORT_TRIGGER = 1.5
"""Distance to a teleporter's centre that triggers it (OGBench: 1.5 x its radius of 1)."""
START_NOISE = 1.0
"""Starts and goals are a cell centre plus U(-START_NOISE, START_NOISE)^2."""

_SIDES = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (di, dj): east, west, north, south
_CORNERS = ((1, 1), (1, -1), (-1, 1), (-1, -1))  # (si, sj) towards a diagonal neighbour


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

    @functools.cached_property
    def contact_flags(self) -> np.ndarray:
        """Per cell, which contacts exist, float32 [rows, cols, 8]: side walls (east, west,
        north, south), then convex corners (NE, NW, SE, SW: a diagonal wall with both adjacent
        sides open)."""
        rows, cols = self.shape
        padded = np.pad(self.walls, 1, constant_values=1)
        flags = np.zeros((rows, cols, 8), dtype=np.float32)
        for i in range(rows):
            for j in range(cols):
                p, q = i + 1, j + 1
                for k, (di, dj) in enumerate(_SIDES):
                    flags[i, j, k] = padded[p + di, q + dj]
                for k, (si, sj) in enumerate(_CORNERS):
                    convex = (
                        padded[p + si, q + sj] and not padded[p + si, q] and not padded[p, q + sj]
                    )
                    flags[i, j, 4 + k] = float(convex)
        return flags

    def teleporters(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(in-centres [n_in, 2], out-centres [n_out, 2]) or None for mazes without."""
        info = TELEPORTERS.get(self.name)
        if info is None:
            return None
        return cell_xy(np.array(info["in"])), cell_xy(np.array(info["out"]))

    # -- pure JAX ---------------------------------------------------------------------------

    def push_out(self, xy: jax.Array) -> jax.Array:
        """Soft-contact recovery at `xy`: xy + (1 - K) sum_c p_c n_c (see the module docstring)."""
        flags = jnp.asarray(self.contact_flags)
        i, j = xy_cell(xy, self.shape)
        centre = jnp.stack([CELL * j - OFFSET, CELL * i - OFFSET]).astype(jnp.float32)
        d = xy - centre
        f = flags[i, j]
        half = CELL / 2
        # Faces: east (+x), west (-x), north (+y), south (-y); penetration along each normal.
        pen_e = jnp.maximum(0.0, d[0] + RADIUS - half) * f[0]
        pen_w = jnp.maximum(0.0, -d[0] + RADIUS - half) * f[1]
        pen_n = jnp.maximum(0.0, d[1] + RADIUS - half) * f[2]
        pen_s = jnp.maximum(0.0, -d[1] + RADIUS - half) * f[3]
        push = jnp.stack([pen_w - pen_e, pen_s - pen_n])
        for k, (si, sj) in enumerate(_CORNERS):
            v = d - half * jnp.array([sj, si], jnp.float32)  # from the corner to the centre
            dist = jnp.sqrt(jnp.maximum(jnp.sum(v**2), 1e-12))
            pen = jnp.maximum(0.0, RADIUS - dist) * f[4 + k]
            push = push + pen * v / dist
        return xy + (1.0 - RECOVERY_KEEP) * push

    def move(self, xy: jax.Array, action: jax.Array) -> jax.Array:
        """One step of the sphere: commanded move STEP * clip(a), then contact recovery."""
        target = xy + STEP * jnp.clip(action, -1.0, 1.0)
        return self.push_out(target.astype(jnp.float32))

    def teleport(self, xy: jax.Array, key: jax.Array) -> jax.Array:
        """`xy`, or a uniformly drawn out-centre when within TELEPORT_TRIGGER of an in-centre."""
        tele = self.teleporters()
        if tele is None:
            return xy
        ins, outs = jnp.asarray(tele[0]), jnp.asarray(tele[1])
        near = jnp.any(jnp.linalg.norm(ins - xy, axis=-1) <= TELEPORT_TRIGGER)
        dest = outs[jax.random.randint(key, (), 0, outs.shape[0])]
        return jnp.where(near, dest, xy)

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
