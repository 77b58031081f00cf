"""Small matplotlib helpers for the envs' ``draw`` capability (see `rlx.report.render`).

An env that can be drawn defines ``draw(ax, states, t)``: it draws frame `t` of a rollout on the
matplotlib Axes `ax` (already cleared), with fixed axis limits, given the rollout's physical states
``states`` (the ``pipeline_state`` pytree as NumPy arrays stacked over time, so it may also draw the
path so far). Nothing here imports matplotlib: the helpers only call methods of `ax`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def fix_limits(ax: Axes, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """Fixed limits, equal aspect and no ticks: the same frame for every step of a rollout."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(False)


def heading_marker(
    ax: Axes, x: float, y: float, theta: float, size: float, color: str = "tab:blue"
) -> None:
    """A triangle at ``(x, y)`` pointing along the heading `theta` (radians from +x)."""
    c, s = np.cos(theta), np.sin(theta)
    body = np.array([[1.0, 0.0], [-0.6, 0.5], [-0.3, 0.0], [-0.6, -0.5]]) * size
    rot = np.array([[c, -s], [s, c]])
    pts = body @ rot.T + np.array([x, y])
    ax.fill(pts[:, 0], pts[:, 1], color=color, zorder=5)


def path(ax: Axes, xs: np.ndarray, ys: np.ndarray, color: str = "tab:blue") -> None:
    """The path travelled so far, as a thin line."""
    ax.plot(xs, ys, color=color, lw=1.0, alpha=0.6, zorder=3)
