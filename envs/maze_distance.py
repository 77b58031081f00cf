"""Exact step distances in a point maze: the fewest env steps between two positions.

One step moves the sphere's centre by at most ``STEP = 0.2`` along each axis (an L-infinity
ball), so the fewest steps between two positions is a Chebyshev geodesic distance through the
free space (the plane minus the walls inflated by the sphere's radius ``0.7``), not a cell-level
BFS count. It is computed on the lattice of spacing ``STEP`` (lattice point ``(a, b)`` at
``xy = (-6 + 0.2 b, -6 + 0.2 a)``), where one step is one of the 8 king moves, by breadth-first
search over the free lattice points. Each maze cell holds a 20 x 20 block of lattice points.

All-pairs tables would be large (22,692 free points in the giant maze: 1 GB), so the table
factors through cell boundaries. On a path from ``x`` in cell ``A`` to ``y`` in cell ``B``, let
``p`` be its last point before it first leaves ``A`` and ``q`` the first point of its final
stay in ``B``: both are *boundary points* (free points with a free king neighbour in another
cell), ``x -> p`` stays inside ``A`` and ``q -> y`` inside ``B``. Hence, exactly,

    d(x, y) = min_{p in dA, q in dB} local_A(x, p) + D(p, q) + local_B(q, y)

and, when ``A = B``, the minimum of that and ``local_A(x, y)``, where ``local_C`` is the BFS
distance within cell ``C`` and ``D`` the full-maze distance between boundary points. The table
(`build`) stores ``D`` (uint16, boundary x boundary: 1.2 MB for medium, 10.5 MB for giant) and
every cell's ``local`` block (uint8, cells x 400 x 400); `distance` evaluates the formula inside
jit. Positions snap to the nearest free lattice point (walls are inflated by exactly 0.7, while
MuJoCo's soft contact lets the sphere sink ~0.04 deeper), so a query is the lattice distance
of the snapped points: within 1 step of the continuous distance at each end.

Teleporters are ignored: for the teleport maze this is the walking distance.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from rlx.envs.maze import CELL, OFFSET, RADIUS, STEP, Maze

PER_CELL = round(CELL / STEP)
"""Lattice points per cell side (20)."""
ORIGIN = -OFFSET - CELL / 2
"""x (and y) of lattice index 0: the lower-left corner of cell (0, 0)."""
UNREACHABLE = 60_000
"""Stored for pairs with no path (uint16); queries return it as a float."""
FORMAT = 1


def lattice_free(maze: Maze) -> np.ndarray:
    """Free lattice points: True where the sphere's centre keeps distance > RADIUS from every
    wall box, shape (rows * PER_CELL, cols * PER_CELL), indexed [a (y), b (x)]."""
    rows, cols = maze.shape
    ys = ORIGIN + STEP * np.arange(rows * PER_CELL)
    xs = ORIGIN + STEP * np.arange(cols * PER_CELL)
    Y, X = np.meshgrid(ys, xs, indexing="ij")
    free = np.ones(Y.shape, dtype=bool)
    for i, j in np.argwhere(maze.walls == 1):
        cx, cy = CELL * j - OFFSET, CELL * i - OFFSET
        dx = np.maximum(np.abs(X - cx) - CELL / 2, 0.0)
        dy = np.maximum(np.abs(Y - cy) - CELL / 2, 0.0)
        free &= dx**2 + dy**2 > RADIUS**2 - 1e-9
    return free


def _king_graph(free: np.ndarray, block: np.ndarray | None = None):
    """Sparse adjacency of the free lattice points under king moves (optionally only moves
    within the same `block` label); returns (points [n, 2], index grid, csr matrix)."""
    from scipy.sparse import csr_matrix

    index = -np.ones(free.shape, dtype=np.int64)
    points = np.argwhere(free)
    index[free] = np.arange(len(points))
    rows_, cols_ = [], []
    for da in (-1, 0, 1):
        for db in (-1, 0, 1):
            if da == 0 and db == 0:
                continue
            a, b = points[:, 0] + da, points[:, 1] + db
            ok = (a >= 0) & (a < free.shape[0]) & (b >= 0) & (b < free.shape[1])
            ok[ok] &= free[a[ok], b[ok]]
            if block is not None:
                ok[ok] &= block[points[ok, 0], points[ok, 1]] == block[a[ok], b[ok]]
            rows_.append(np.nonzero(ok)[0])
            cols_.append(index[a[ok], b[ok]])
    r, c = np.concatenate(rows_), np.concatenate(cols_)
    n = len(points)
    return points, index, csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n, n))


def _bfs(graph, sources: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Unweighted shortest-path lengths from each source to every node (float, inf if none)."""
    from scipy.sparse.csgraph import shortest_path

    parts = [
        shortest_path(graph, method="D", unweighted=True, indices=sources[s : s + chunk])
        for s in range(0, len(sources), chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, graph.shape[0]))


def _as_table(dist: np.ndarray, dtype) -> np.ndarray:
    cap = np.iinfo(dtype).max if dtype == np.uint8 else UNREACHABLE
    return np.where(np.isfinite(dist), np.minimum(dist, cap), cap).astype(dtype)


def build(maze: Maze) -> dict[str, np.ndarray]:
    """The distance table of `maze` (arrays, as stored in a distances asset):

    ``snap`` [A, B] int32: lattice point -> index of the nearest free lattice point;
    ``cell`` [n] int32: free point -> its cell's row in ``local``; ``slot`` [n] int32: its
    position within the cell's 20 x 20 block; ``local`` [cells, 400, 400] uint8 (255: no path
    within the cell); ``boundary`` [cells, m] int32: each cell's boundary points as rows of
    ``between`` (-1 padding); ``boundary_slot`` [cells, m] int32; ``between`` [k, k] uint16;
    plus ``walls`` (the maze map, to check the table's maze) and ``format``.
    """
    from scipy.ndimage import distance_transform_edt

    free = lattice_free(maze)
    cols = maze.shape[1]
    a_idx, b_idx = np.indices(free.shape)
    block = (a_idx // PER_CELL) * cols + b_idx // PER_CELL
    points, index, full = _king_graph(free)
    _, _, within = _king_graph(free, block)
    _, nearest = distance_transform_edt(~free, return_indices=True)
    snap = index[nearest[0], nearest[1]].astype(np.int32)

    cell_ids = block[points[:, 0], points[:, 1]]
    used = np.unique(cell_ids)
    cell_row = np.searchsorted(used, cell_ids).astype(np.int32)
    slot = ((points[:, 0] % PER_CELL) * PER_CELL + points[:, 1] % PER_CELL).astype(np.int32)

    local = np.full((len(used), PER_CELL**2, PER_CELL**2), 255, dtype=np.uint8)
    for r in range(len(used)):
        members = np.nonzero(cell_row == r)[0]
        d = _bfs(within, members)[:, members]
        local[r][np.ix_(slot[members], slot[members])] = _as_table(d, np.uint8)

    coo = full.tocoo()
    is_boundary = np.zeros(len(points), dtype=bool)
    is_boundary[coo.row[cell_row[coo.row] != cell_row[coo.col]]] = True
    bpoints = np.nonzero(is_boundary)[0]
    between = _as_table(_bfs(full, bpoints)[:, bpoints], np.uint16)
    brow = np.searchsorted(bpoints, np.arange(len(points)))
    per_cell = [bpoints[cell_row[bpoints] == r] for r in range(len(used))]
    width = max(len(p) for p in per_cell)
    boundary = -np.ones((len(used), width), dtype=np.int32)
    boundary_slot = np.zeros((len(used), width), dtype=np.int32)
    for r, members in enumerate(per_cell):
        boundary[r, : len(members)] = brow[members]
        boundary_slot[r, : len(members)] = slot[members]
    return {
        "snap": snap, "cell": cell_row, "slot": slot, "local": local, "boundary": boundary,
        "boundary_slot": boundary_slot, "between": between, "walls": maze.walls.astype(np.int32),
        "format": np.array(FORMAT, dtype=np.int32),
    }  # fmt: skip


@functools.cache
def table(name: str) -> dict[str, np.ndarray]:
    """`build` of the maze `name`, once per process."""
    return build(Maze.named(name))


def lattice_point(xy: jax.Array, shape: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
    """The lattice point (a, b) nearest to position `xy` (free or not), clipped to the grid."""
    a = jnp.clip(jnp.round((xy[1] - ORIGIN) / STEP).astype(jnp.int32), 0, shape[0] - 1)
    b = jnp.clip(jnp.round((xy[0] - ORIGIN) / STEP).astype(jnp.int32), 0, shape[1] - 1)
    return a, b


def distance(tables: dict[str, jax.Array], xy: jax.Array, goal: jax.Array) -> jax.Array:
    """Fewest steps from `xy` to `goal` (shape (2,) each; vmap for batches), float32, by the
    boundary formula of the module docstring; UNREACHABLE where no path exists."""
    snap = tables["snap"]
    i = snap[lattice_point(xy, snap.shape)]
    j = snap[lattice_point(goal, snap.shape)]
    ci, cj = tables["cell"][i], tables["cell"][j]
    si, sj = tables["slot"][i], tables["slot"][j]
    local = tables["local"]
    bi, bj = tables["boundary"][ci], tables["boundary"][cj]
    to_p = local[ci, si, tables["boundary_slot"][ci]].astype(jnp.int32)  # x -> dA, [m]
    from_q = local[cj, tables["boundary_slot"][cj], sj].astype(jnp.int32)  # dB -> y, [m]
    mid = tables["between"][jnp.maximum(bi, 0)][:, jnp.maximum(bj, 0)].astype(jnp.int32)
    total = to_p[:, None] + mid + from_q[None, :]
    valid = (bi >= 0)[:, None] & (bj >= 0)[None, :] & (to_p < 255)[:, None] & (from_q < 255)
    via = jnp.min(jnp.where(valid, total, UNREACHABLE))
    own = local[ci, si, sj].astype(jnp.int32)
    inside = jnp.where(own < 255, own, UNREACHABLE)
    best = jnp.where(ci == cj, jnp.minimum(inside, via), via)
    return jnp.minimum(best, UNREACHABLE).astype(jnp.float32)
