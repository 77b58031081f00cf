"""Underwater drone escaping through a hole while avoiding a contaminated zone, pure JAX.

The ``UnderwaterDrone-v0`` task of Bolychev et al. (2026), "An Agency-Transferring Model-Free
Policy Enhancement Technique": a planar autonomous underwater vehicle in the box
``x ∈ [-2.5, 2.5]``, ``y ∈ [0, 4]`` must reach a hole in the top wall while keeping out of a
contaminated region that its baseline controller ignores.

Physical state (stored in ``State.pipeline_state``, float32, shape ``(9,)``)::

    [x, y, θ, vx, vy, ω, frozen, max_dist, init_dist]

``θ`` is the heading (the body x-axis points at angle ``θ`` in the world frame), kept wrapped
to ``[-π, π)``; ``frozen`` is 1 once the drone has entered the goal set; ``max_dist`` is the
running maximum of the penetration distance (below) over the episode so far, ``init_dist``
the penetration distance of the initial state.

Action (float32, shape ``(2,)``): in ``[-1, 1]`` (clipped inside ``step``); body-frame thrusts
``F_long = 1.0 a₀ ∈ [-1, 1]`` (along the heading) and ``F_lat = 0.5 a₁ ∈ [-0.5, 0.5]``
(sideways, applied ``d = 0.2`` in front of the centre of mass, so it also turns the drone).

Dynamics (explicit Euler, ``dt = 0.02``, ``m = 1``, ``I = 0.1``, quadratic drag ``C_d = 0.05``,
gravity ``g = 0.5`` along ``-y``)::

    F      = R(θ) [F_long, F_lat]ᵀ = [cos θ F_long - sin θ F_lat, sin θ F_long + cos θ F_lat]
    v̇      = F / m - C_d |v| v / m + (0, -g)
    ω̇      = d F_lat / I
    v'     = v + v̇ dt,       ω' = ω + ω̇ dt
    p'     = p + v' dt,      θ' = wrap(θ + ω' dt)

then the walls, as in the official code (aidagroup/calf-enhance@afb5edc):
``x' = clip(x', -2.51, 2.51)``, ``y' = clip(y', -0.01, 4.01)``; a step that ends in the goal set
freezes the drone, otherwise a velocity component pointing further out is zeroed beyond a
wall (``y' < 0: vy' = max(vy', 0)``, ``y' > 4: vy' = min(vy', 0)``, the same for ``x`` at ±2.5).

Goal set ``G`` (the hole in the top wall): ``y ≥ 4`` and ``|x| ≤ 0.4``. A step that ends in
``G`` freezes the drone for good: its velocities are set to zero and from then on ``step``
leaves the physical state unchanged (``metrics["goal_reached"]`` stays 1).

Contaminated region ``C`` (as in the original code, ``x`` is *not* squared, so ``C`` is the
region left of a parabola with vertex ``(0.81, 2)`` opening towards ``-x``)::

    C = {(x, y) : x / 0.81 + (y - 2)² / 0.36 ≤ 1}

Penetration distance (the official avoidance score's): the Euclidean distance from a point
inside ``C`` to C's boundary, the parabola ``x = 0.81 - 2.25 (y - 2)²``, and 0 outside::

    dist(x, y) = min_{y' ∈ [0, 4]} ‖(x, y) - (0.81 - 2.25 (y' - 2)², y')‖   if (x, y) ∈ C, else 0

computed in closed form by `boundary_distance` (the real roots of a cubic: the global minimum
to ~1e-6).

Observation (float32, shape ``(7,)``): ``[x, y, cos θ, sin θ, vx, vy, ω]``.

Reward (on the state *after* the step; for a frozen drone, on its frozen state)::

    r = -0.25 (y - 4)² - 0.25 x² - 0.05 vx² - 0.05 vy² - 0.01 ω² - 5 · 1[(x, y) ∈ C]

Termination: none, ``done`` is always 0 (a frozen drone simply stays put). Episodes are cut
by the registry's time limit (``episode_length = 1500`` steps, 30 s).

Metrics (float32 scalars, present from ``reset``; ``episode_metrics`` lists the ones whose
value at the last step of an episode is its outcome):

- ``goal_reached``: 1.0 once the drone is frozen in ``G``;
- ``avoidance``: ``max_{t' ≤ t} dist(s_t') - dist(s_0)`` (≥ 0: t' = 0 is included), the
  deepest penetration of ``C`` beyond the starting one, in length units (lower is better);
  the paper's baseline row: 0.54 ± 0.18;
- ``in_contaminated``: 1.0 while the drone is in ``C``.

Initial-state distribution: ``x ~ U(-1.25, 1.25)``, ``y ~ U(0, 4/3)``,
``θ ~ U(π/2 - π/20, π/2 + π/20)`` (pointing up), ``vx, vy, ω ~ U(-0.2, 0.2)``.

Baseline controller (``baseline_policy``): a PD law on the position that ignores ``C``::

    F_y = 0.5 + 2.0 (4 - y) - 1.2 vy          # gravity compensation + PD towards the top
    F_x = 1.5 (0 - x) - 0.8 vx                # PD towards the hole's centre line
    F_long = cos θ F_x + sin θ F_y,   F_lat = -sin θ F_x + cos θ F_y      # R(θ)ᵀ F
    a = clip([F_long / 1.0, F_lat / 0.5], -1, 1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State
from rlx.envs.drawing import fix_limits, heading_marker, path

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _wrap(angle: jax.Array) -> jax.Array:
    """Wrap an angle to ``[-π, π)``."""
    return jnp.mod(angle + jnp.pi, 2.0 * jnp.pi) - jnp.pi


POLISH_STEPS = 2


def _cubic_roots(p: jax.Array, q: jax.Array) -> jax.Array:
    """The real roots of ``u³ + p u + q = 0`` (Cardano's formula with one real root, the
    trigonometric one with three), ``[..., 3]``; a single root is repeated."""
    disc = (q / 2.0) ** 2 + (p / 3.0) ** 3
    sq = jnp.sqrt(jnp.maximum(disc, 0.0))
    one = jnp.cbrt(-q / 2.0 + sq) + jnp.cbrt(-q / 2.0 - sq)
    neg_p = jnp.maximum(-p, 1e-12)
    r = 2.0 * jnp.sqrt(neg_p / 3.0)
    phi = jnp.arccos(jnp.clip(3.0 * q / (-2.0 * neg_p) * jnp.sqrt(3.0 / neg_p), -1.0, 1.0)) / 3.0
    three = jnp.stack([r * jnp.cos(phi - 2.0 * np.pi * k / 3.0) for k in range(3)], axis=-1)
    return jnp.where((disc > 0)[..., None], one[..., None], three)


def parabola_distance(x: jax.Array, y: jax.Array, a: float, k: float) -> jax.Array:
    """``min_{y' ∈ [0, 4]} ‖(x, y) - (a - k (y' - 2)², y')‖`` in closed form: with u = y' - 2,
    the stationary points of D²(u) = (a - k u² - x)² + (u - (y - 2))² solve the depressed cubic
    ``u³ + (1 - 2k (a - x)) / (2k²) u - (y - 2) / (2k²) = 0``; D is the least of D² at its real
    roots (each polished by POLISH_STEPS Newton steps, clipped to [-2, 2]) and at u = ±2."""
    u0 = y - 2.0
    p = (1.0 - 2.0 * k * (a - x)) / (2.0 * k**2)
    roots = _cubic_roots(p, -u0 / (2.0 * k**2))
    for _ in range(POLISH_STEPS):
        f = roots**3 + p[..., None] * roots - (u0 / (2.0 * k**2))[..., None]
        df = 3.0 * roots**2 + p[..., None]
        roots = roots - jnp.where(
            jnp.abs(df) > 1e-6, f / jnp.where(jnp.abs(df) > 1e-6, df, 1.0), 0.0
        )
    u = jnp.concatenate(
        [
            jnp.clip(roots, -2.0, 2.0),
            jnp.stack([jnp.full_like(u0, -2.0), jnp.full_like(u0, 2.0)], -1),
        ],
        -1,
    )
    d2 = (a - k * u**2 - x[..., None]) ** 2 + (u - u0[..., None]) ** 2
    return jnp.sqrt(d2.min(-1)).astype(jnp.float32)


class UnderwaterDrone(Env):
    """Planar AUV that must rise through a hole in the top wall, avoiding a contaminated zone."""

    episode_length: int = 1500
    episode_metrics: tuple[str, ...] = ("goal_reached", "avoidance")
    metric_labels: ClassVar[dict[str, str]] = {"avoidance": "avoidance"}
    action_scale: tuple[float, ...] = (1.0, 0.5)
    """Physical units per normalised action unit (the official action bounds F_long, F_lat)."""

    # Physical constants (see the module docstring).
    DT = 0.02
    MASS = 1.0
    INERTIA = 0.1
    DRAG = 0.05
    LAT_OFFSET = 0.2
    GRAVITY = 0.5
    MAX_F_LONG = 1.0
    MAX_F_LAT = 0.5
    TOP_Y = 4.0
    MAX_X = 2.5
    WALL_SLACK = 0.01
    HOLE_HALF_WIDTH = 0.4
    # Contaminated region x / C_X + (y - C_Y)² / C_YY ≤ 1.
    C_X = 0.81
    C_Y = 2.0
    C_YY = 0.36
    CONTAMINATION_PENALTY = 5.0
    # Baseline PD gains.
    KP_Y = 2.0
    KD_Y = 1.2
    KP_X = 1.5
    KD_X = 0.8

    @property
    def observation_size(self) -> int:
        """Observation length: [x, y, cos θ, sin θ, vx, vy, ω]."""
        return 7

    @property
    def action_size(self) -> int:
        """Action length: normalised longitudinal and lateral thrust."""
        return 2

    @property
    def backend(self) -> str:
        """Physics backend name (pure JAX)."""
        return "jax"

    # ----------------------------------------------------------------------------- helpers

    def _obs(self, q: jax.Array) -> jax.Array:
        """Observation [x, y, cos θ, sin θ, vx, vy, ω] from the physical state."""
        x, y, th, vx, vy, om = q[0], q[1], q[2], q[3], q[4], q[5]
        return jnp.stack([x, y, jnp.cos(th), jnp.sin(th), vx, vy, om]).astype(jnp.float32)

    def region_value(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """``x / 0.81 + (y - 2)² / 0.36``; the contaminated region C is where this is ≤ 1."""
        return x / self.C_X + (y - self.C_Y) ** 2 / self.C_YY

    def in_contaminated(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """1.0 where ``(x, y) ∈ C``, else 0.0 (float32)."""
        return (self.region_value(x, y) <= 1.0).astype(jnp.float32)

    def boundary_distance(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """Penetration distance: from (x, y) to the parabola ``x = 0.81 - 2.25 (y' - 2)²``,
        ``y' ∈ [0, 4]``, inside C; 0 outside (see the module docstring)."""
        x = jnp.asarray(x, jnp.float32)
        y = jnp.asarray(y, jnp.float32)
        inside = self.in_contaminated(x, y) > 0
        return jnp.where(inside, parabola_distance(x, y, self.C_X, self.C_X / self.C_YY), 0.0)

    def in_goal(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """True in the hole: ``y ≥ 4`` and ``|x| ≤ 0.4``."""
        return (y >= self.TOP_Y) & (jnp.abs(x) <= self.HOLE_HALF_WIDTH)

    def _reward(self, q: jax.Array) -> jax.Array:
        """``-0.25 (y-4)² - 0.25 x² - 0.05 vx² - 0.05 vy² - 0.01 ω² - 5 · 1[C]`` on state q."""
        x, y, vx, vy, om = q[0], q[1], q[3], q[4], q[5]
        r = (
            -0.25 * (y - self.TOP_Y) ** 2
            - 0.25 * x**2
            - 0.05 * vx**2
            - 0.05 * vy**2
            - 0.01 * om**2
            - self.CONTAMINATION_PENALTY * self.in_contaminated(x, y)
        )
        return r.astype(jnp.float32)

    def _metrics(self, q: jax.Array) -> dict[str, jax.Array]:
        """goal_reached, avoidance and in_contaminated of the physical state q."""
        avoidance = jnp.maximum(0.0, q[7] - q[8])
        return {
            "goal_reached": q[6].astype(jnp.float32),
            "avoidance": avoidance.astype(jnp.float32),
            "in_contaminated": self.in_contaminated(q[0], q[1]),
        }

    # ----------------------------------------------------------------------------- Env API

    def reset(self, rng: jax.Array) -> State:
        """Sample the start: x ~ U(±1.25), y ~ U(0, 4/3), θ ~ U(π/2 ± π/20), v, ω ~ U(±0.2)."""
        lo = jnp.array([-1.25, 0.0, np.pi / 2 - np.pi / 20, -0.2, -0.2, -0.2], jnp.float32)
        hi = jnp.array([1.25, 4.0 / 3.0, np.pi / 2 + np.pi / 20, 0.2, 0.2, 0.2], jnp.float32)
        s = jax.random.uniform(rng, (6,), jnp.float32, lo, hi)
        d0 = self.boundary_distance(s[0], s[1])
        frozen = self.in_goal(s[0], s[1]).astype(jnp.float32)  # impossible (y ≤ 4/3); for safety
        q = jnp.concatenate([s, jnp.stack([frozen, d0, d0])]).astype(jnp.float32)
        return State(
            pipeline_state=q,
            obs=self._obs(q),
            reward=jnp.zeros((), jnp.float32),
            done=jnp.zeros((), jnp.float32),
            metrics=self._metrics(q),
            info={},
        )

    def _dynamics(self, q: jax.Array, action: jax.Array) -> jax.Array:
        """One explicit Euler step of the free (not frozen) drone; returns the new state."""
        x, y, th, vx, vy, om = q[0], q[1], q[2], q[3], q[4], q[5]
        act = jnp.clip(jnp.asarray(action, jnp.float32).reshape(-1)[:2], -1.0, 1.0)
        f_long = self.MAX_F_LONG * act[0]
        f_lat = self.MAX_F_LAT * act[1]
        c, s = jnp.cos(th), jnp.sin(th)
        fx = c * f_long - s * f_lat
        fy = s * f_long + c * f_lat
        speed = jnp.sqrt(vx**2 + vy**2)
        ax = fx / self.MASS - self.DRAG * speed * vx / self.MASS
        ay = fy / self.MASS - self.DRAG * speed * vy / self.MASS - self.GRAVITY
        alpha = self.LAT_OFFSET * f_lat / self.INERTIA
        vx = vx + ax * self.DT
        vy = vy + ay * self.DT
        om = om + alpha * self.DT
        x_raw = x + vx * self.DT
        y_raw = y + vy * self.DT
        th = _wrap(th + om * self.DT)
        x, y, vx, vy = self._walls(x_raw, y_raw, vx, vy)
        # Entering the hole freezes the drone (velocities zero).
        goal = self.in_goal(x, y)
        vx = jnp.where(goal, 0.0, vx)
        vy = jnp.where(goal, 0.0, vy)
        om = jnp.where(goal, 0.0, om)
        max_dist = jnp.maximum(q[7], self.boundary_distance(x, y))
        return jnp.stack([x, y, th, vx, vy, om, goal.astype(jnp.float32), max_dist, q[8]]).astype(
            jnp.float32
        )

    def _walls(
        self, x: jax.Array, y: jax.Array, vx: jax.Array, vy: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """Clip the position to the box widened by 0.01 and zero the velocity components that
        point further out beyond a wall (see the module docstring)."""
        x = jnp.clip(x, -self.MAX_X - self.WALL_SLACK, self.MAX_X + self.WALL_SLACK)
        y = jnp.clip(y, -self.WALL_SLACK, self.TOP_Y + self.WALL_SLACK)
        vx = jnp.where(x < -self.MAX_X, jnp.maximum(vx, 0.0), vx)
        vx = jnp.where(x > self.MAX_X, jnp.minimum(vx, 0.0), vx)
        vy = jnp.where(y < 0.0, jnp.maximum(vy, 0.0), vy)
        vy = jnp.where(y > self.TOP_Y, jnp.minimum(vy, 0.0), vy)
        return x, y, vx, vy

    def step(self, state: State, action: jax.Array) -> State:
        """Advance one Euler step of dt (a frozen drone stays put); reward on the new state."""
        q = state.pipeline_state
        moved = self._dynamics(q, action)
        new_q = jnp.where(q[6] > 0, q, moved)
        return state.replace(
            pipeline_state=new_q,
            obs=self._obs(new_q),
            reward=self._reward(new_q),
            done=jnp.zeros((), jnp.float32),
            metrics={**state.metrics, **self._metrics(new_q)},
        )

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """World-frame PD law towards (0, 4), rotated into the body frame; actions in [-1, 1]."""
        obs = jnp.asarray(obs, jnp.float32)
        x, y, c, s, vx, vy = (obs[..., i] for i in range(6))
        fy = self.GRAVITY * self.MASS + self.KP_Y * (self.TOP_Y - y) - self.KD_Y * vy
        fx = self.KP_X * (0.0 - x) - self.KD_X * vx
        f_long = c * fx + s * fy
        f_lat = -s * fx + c * fy
        act = jnp.stack([f_long / self.MAX_F_LONG, f_lat / self.MAX_F_LAT], axis=-1)
        return jnp.clip(act, -1.0, 1.0).astype(jnp.float32)

    # ----------------------------------------------------------------------------- drawing

    def draw(self, ax: Axes, states: np.ndarray, t: int) -> None:
        """Draws step `t` of a rollout (``states``: physical states ``[T, 9]``): the box, the top
        wall with its hole (green), the contaminated region C (orange), the drone's path so far
        and the drone pointing along its heading ``θ``."""
        margin = 0.2
        fix_limits(ax, (-self.MAX_X - margin, self.MAX_X + margin), (-margin, self.TOP_Y + margin))
        self._draw_walls(ax)
        self._draw_contaminated(ax)
        path(ax, states[: t + 1, 0], states[: t + 1, 1])
        x, y, th = (float(v) for v in states[t, :3])
        heading_marker(ax, x, y, th, size=0.2)

    def _draw_walls(self, ax: Axes) -> None:
        """The box's side and bottom walls, the top wall and the hole (the goal set) in it."""
        x0, x1, top, hole = -self.MAX_X, self.MAX_X, self.TOP_Y, self.HOLE_HALF_WIDTH
        ax.plot([-hole, x0, x0, x1, x1, hole], [top, top, 0.0, 0.0, top, top], color="0.2", lw=2)
        ax.plot([-hole, hole], [top, top], color="tab:green", lw=5)

    def _draw_contaminated(self, ax: Axes) -> None:
        """C = {x / 0.81 + (y - 2)² / 0.36 ≤ 1} inside the box: left of its parabolic edge."""
        ys = np.linspace(0.0, self.TOP_Y, 200)
        edge = np.clip(self.C_X * (1.0 - (ys - self.C_Y) ** 2 / self.C_YY), -self.MAX_X, self.MAX_X)
        ax.fill_betweenx(ys, -self.MAX_X, edge, where=edge > -self.MAX_X, color="tab:orange",
                         alpha=0.35, lw=0)  # fmt: skip
