"""Cart-pole swing-up: Barto/Sutton cart-pole dynamics (as in Gym ``CartPole``), pure JAX.

Physical state (stored in ``State.pipeline_state``, float32, shape ``(4,)``):
``[x, xdot, θ, θdot]`` with ``θ = 0`` upright and ``θ = ±π`` hanging down. ``θ`` is kept
wrapped to ``[-π, π)``.

Dynamics (Barto, Sutton & Anderson 1983 without friction, the equations of Gym ``CartPole``;
``M = m_c + m_p``, ``l`` = half pole length, ``F = force_mag * clip(action, -1, 1)``)::

    tmp   = (F + m_p l θdot² sin θ) / M
    θddot = (g sin θ - cos θ tmp) / (l (4/3 - m_p cos² θ / M))
    xddot = tmp - m_p l θddot cos θ / M

integrated with one classical RK4 step of ``dt`` (force held constant over the step).
Defaults: ``g = 9.8``, ``m_c = 1.0``, ``m_p = 0.1``, ``l = 0.5``, ``force_mag = 10``,
``dt = 0.02``.

Observation (float32, shape ``(5,)``): ``[x, xdot, cos θ, sin θ, θdot]``.

Action (float32, shape ``(1,)``): in ``[-1, 1]`` (clipped inside ``step``), scaled by
``force_mag`` to the horizontal force on the cart.

Reward (dm_control-like, in ``[0, 1]``, on the state *after* the step and the clipped action
``a``)::

    r = upright * centered * small_control * small_velocity
    upright        = (1 + cos θ) / 2
    centered       = (1 + exp(-x²)) / 2
    small_control  = (4 + (1 - a²)) / 5
    small_velocity = (1 + exp(-θdot² / 10)) / 2

and ``r = 0`` on the terminating step.

Termination: ``done = 1`` when the cart leaves the track, ``|x| > x_threshold`` (2.4) after the
step. Time-out truncation (``episode_length = 500`` steps, 10 s) is left to the registry's
Brax ``EpisodeWrapper``.

Goal set (``metrics["goal_reached"]``, on the state after the step):
``|wrap(θ)| < 0.2`` and ``|θdot| < 1.0`` and ``|x| < 1.0``.

Initial-state distribution: pole hanging down, ``θ = π + U(-0.2, 0.2)``,
``x ~ U(-0.2, 0.2)``, ``xdot ~ U(-0.05, 0.05)``, ``θdot ~ U(-0.05, 0.05)``.

Baseline controller (``baseline_policy``): Åström–Furuta energy pumping plus an LQR catch.
The pole energy per unit ``m_p l``, ``E = (2/3) l θdot² + g (cos θ - 1)`` (``E = 0`` upright at
rest), obeys ``dE/dt = -θdot cos θ xddot``. The pumping law asks for the cart acceleration
``xddot = sat(k_E (E - E_ref) θdot cos θ) - k_x x - k_v xdot`` (the last two terms keep the cart
centred on the track) and converts it to a force through the affine force-to-``xddot`` map of
the dynamics. When ``|wrap(θ)| < CATCH_ANGLE = 0.3`` rad and ``|θdot| < CATCH_SPEED = 2``
rad/s it switches to a discrete LQR (``scipy.linalg.solve_discrete_are`` on a finite-difference
linearisation of the RK4 step at upright), clipped to the force limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State
from rlx.envs.control import dlqr
from rlx.envs.drawing import fix_limits

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _wrap(angle):
    """Wrap an angle to ``[-π, π)`` (numpy or jax)."""
    xp = jnp if isinstance(angle, jax.Array) else np
    return xp.mod(angle + np.pi, 2.0 * np.pi) - np.pi


class CartpoleSwingup(Env):
    """Cart-pole started hanging down; swing the pole up and balance it on a bounded track."""

    episode_length: int = 500

    # Baseline controller constants (see the module docstring).
    CATCH_ANGLE = 0.3  # rad: switch to LQR when |wrap(θ)| < CATCH_ANGLE ...
    CATCH_SPEED = 2.0  # rad/s: ... and |θdot| < CATCH_SPEED.
    PUMP_GAIN = 0.5  # k_E (m/s² per energy unit per rad/s).
    PUMP_MAX_ACCEL = 6.0  # saturation of the pumping acceleration, m/s².
    PUMP_ENERGY_MARGIN = 0.02  # E_ref = PUMP_ENERGY_MARGIN * g.
    CENTER_POS_GAIN = 1.0  # k_x, 1/s².
    CENTER_VEL_GAIN = 1.5  # k_v, 1/s.

    def __init__(
        self,
        gravity: float = 9.8,
        cart_mass: float = 1.0,
        pole_mass: float = 0.1,
        half_pole_length: float = 0.5,
        force_mag: float = 10.0,
        dt: float = 0.02,
        x_threshold: float = 2.4,
    ):
        """Set the physical constants (defaults are Gym CartPole's) and the LQR gain."""
        self.gravity = float(gravity)
        self.cart_mass = float(cart_mass)
        self.pole_mass = float(pole_mass)
        self.half_pole_length = float(half_pole_length)
        self.force_mag = float(force_mag)
        self.dt = float(dt)
        self.x_threshold = float(x_threshold)
        self._lqr_gain = self._compute_lqr_gain()

    # ------------------------------------------------------------------ physics
    def _derivs(self, s, force):
        """Time derivative [xdot, xddot, θdot, θddot] of s = [x, xdot, θ, θdot] (np or jnp)."""
        xp = jnp if isinstance(s, jax.Array) else np
        g, mp, lh = self.gravity, self.pole_mass, self.half_pole_length
        total = self.cart_mass + mp
        xdot, th, thdot = s[1], s[2], s[3]
        sin, cos = xp.sin(th), xp.cos(th)
        tmp = (force + mp * lh * thdot**2 * sin) / total
        thacc = (g * sin - cos * tmp) / (lh * (4.0 / 3.0 - mp * cos**2 / total))
        xacc = tmp - mp * lh * thacc * cos / total
        return xp.stack([xdot, xacc, thdot, thacc])

    def _rk4(self, s, force):
        """One RK4 step of length dt with constant force (np or jnp)."""
        dt = self.dt
        k1 = self._derivs(s, force)
        k2 = self._derivs(s + 0.5 * dt * k1, force)
        k3 = self._derivs(s + 0.5 * dt * k2, force)
        k4 = self._derivs(s + dt * k3, force)
        return s + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    def _compute_lqr_gain(self) -> np.ndarray:
        """Discrete LQR gain K (F = -K s, in newtons) for the RK4 step linearised at upright."""
        eps = 1e-6
        s0 = np.zeros(4)
        A = np.zeros((4, 4))
        for i in range(4):
            d = np.zeros(4)
            d[i] = eps
            A[:, i] = (self._rk4(s0 + d, 0.0) - self._rk4(s0 - d, 0.0)) / (2 * eps)
        B = ((self._rk4(s0, eps) - self._rk4(s0, -eps)) / (2 * eps)).reshape(4, 1)
        Q = np.diag([1.0, 1.0, 10.0, 1.0])
        R = np.array([[0.05]])
        K = dlqr(A, B, Q, R)
        return K.reshape(4).astype(np.float32)

    # ------------------------------------------------------------------ Env API
    @property
    def observation_size(self) -> int:
        """Observation length: [x, xdot, cos θ, sin θ, θdot]."""
        return 5

    @property
    def action_size(self) -> int:
        """Action length: one normalised cart force."""
        return 1

    @property
    def backend(self) -> str:
        """Physics backend name (pure JAX)."""
        return "jax"

    def _obs(self, q: jax.Array) -> jax.Array:
        """Observation [x, xdot, cos θ, sin θ, θdot] from the state [x, xdot, θ, θdot]."""
        return jnp.stack([q[0], q[1], jnp.cos(q[2]), jnp.sin(q[2]), q[3]]).astype(jnp.float32)

    def _goal(self, q: jax.Array) -> jax.Array:
        """1.0 when upright, still and centred (|θ|<0.2, |θdot|<1, |x|<1), else 0.0."""
        ok = (jnp.abs(_wrap(q[2])) < 0.2) & (jnp.abs(q[3]) < 1.0) & (jnp.abs(q[0]) < 1.0)
        return ok.astype(jnp.float32)

    def reset(self, rng: jax.Array) -> State:
        """Sample θ = π + U(±0.2), x = U(±0.2), xdot = U(±0.05), θdot = U(±0.05)."""
        lo = jnp.array([-0.2, -0.05, -0.2, -0.05], jnp.float32)
        noise = jax.random.uniform(rng, (4,), jnp.float32, lo, -lo)
        q = noise + jnp.array([0.0, 0.0, np.pi, 0.0], jnp.float32)
        q = q.at[2].set(_wrap(q[2])).astype(jnp.float32)
        return State(
            pipeline_state=q,
            obs=self._obs(q),
            reward=jnp.zeros((), jnp.float32),
            done=jnp.zeros((), jnp.float32),
            metrics={"goal_reached": self._goal(q)},
            info={},
        )

    def step(self, state: State, action: jax.Array) -> State:
        """Advance one RK4 step of dt with force force_mag * clip(action, -1, 1)."""
        q = state.pipeline_state
        act = jnp.clip(jnp.asarray(action, jnp.float32).reshape(-1)[0], -1.0, 1.0)
        force = jnp.float32(self.force_mag) * act
        new_q = self._rk4(q, force)
        new_q = new_q.at[2].set(_wrap(new_q[2])).astype(jnp.float32)
        x, th, thdot = new_q[0], new_q[2], new_q[3]
        upright = (1.0 + jnp.cos(th)) / 2.0
        centered = (1.0 + jnp.exp(-(x**2))) / 2.0
        small_control = (4.0 + (1.0 - act**2)) / 5.0
        small_velocity = (1.0 + jnp.exp(-(thdot**2) / 10.0)) / 2.0
        done = (jnp.abs(x) > self.x_threshold).astype(jnp.float32)
        reward = upright * centered * small_control * small_velocity * (1.0 - done)
        return state.replace(
            pipeline_state=new_q,
            obs=self._obs(new_q),
            reward=reward.astype(jnp.float32),
            done=done,
            metrics={**state.metrics, "goal_reached": self._goal(new_q)},
        )

    # ------------------------------------------------------------------ baseline
    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """Energy pumping with cart centring plus an LQR catch; returns an action in [-1, 1]."""
        obs = jnp.asarray(obs, jnp.float32)
        x, xdot, cos_th, sin_th, thdot = (obs[..., i] for i in range(5))
        th = jnp.arctan2(sin_th, cos_th)
        g, lh = self.gravity, self.half_pole_length
        # Pole energy per unit m_p l; dE/dt = -θdot cos θ xddot.
        energy = (2.0 / 3.0) * lh * thdot**2 + g * (cos_th - 1.0)
        e_ref = self.PUMP_ENERGY_MARGIN * g
        acc_pump = jnp.clip(
            self.PUMP_GAIN * (energy - e_ref) * thdot * cos_th,
            -self.PUMP_MAX_ACCEL,
            self.PUMP_MAX_ACCEL,
        )
        acc_des = acc_pump - self.CENTER_POS_GAIN * x - self.CENTER_VEL_GAIN * xdot
        # Kick from rest so the pumping law cannot stall exactly at the bottom.
        acc_des = jnp.where(
            (jnp.abs(thdot) < 1e-3) & (jnp.abs(energy + 2 * g) < 1e-3), 1.0, acc_des
        )
        # xddot is affine in the force: xddot = c0 + c1 F; invert it.
        s = jnp.stack([x, xdot, th, thdot])
        c0 = self._derivs(s, 0.0)[1]
        c1 = self._derivs(s, 1.0)[1] - c0
        f_pump = (acc_des - c0) / c1
        # LQR catch.
        k = self._lqr_gain
        f_lqr = -(k[0] * x + k[1] * xdot + k[2] * th + k[3] * thdot)
        near_top = (jnp.abs(th) < self.CATCH_ANGLE) & (jnp.abs(thdot) < self.CATCH_SPEED)
        force = jnp.where(near_top, f_lqr, f_pump)
        act = jnp.clip(force / self.force_mag, -1.0, 1.0)
        return act[..., None].astype(jnp.float32)

    # ------------------------------------------------------------------ drawing
    CART_WIDTH = 0.5  # m, drawn only.
    CART_HEIGHT = 0.25  # m, drawn only.

    def draw(self, ax: Axes, states: np.ndarray, t: int) -> None:
        """Draws step `t` of a rollout (``states``: physical states ``[T, 4]``): the track with its
        ends at ``±x_threshold``, the cart at ``x`` and the pole (length ``2 l``) at angle ``θ``
        from upright (``θ > 0`` leans towards ``+x``)."""
        from matplotlib.patches import Rectangle

        x, th = float(states[t, 0]), float(states[t, 2])
        pole = 2.0 * self.half_pole_length
        lim = self.x_threshold + self.CART_WIDTH
        fix_limits(ax, (-lim, lim), (-1.2 * pole, 1.2 * pole))
        ax.plot([-self.x_threshold, self.x_threshold], [0.0, 0.0], color="0.5", lw=2)
        for end in (-self.x_threshold, self.x_threshold):
            ax.plot([end, end], [-0.2, 0.2], color="0.3", lw=3)
        w, h = self.CART_WIDTH, self.CART_HEIGHT
        ax.add_patch(Rectangle((x - w / 2, -h / 2), w, h, color="tab:blue", zorder=4))
        tip_x, tip_y = x + pole * np.sin(th), pole * np.cos(th)
        ax.plot([x, tip_x], [0.0, tip_y], color="tab:red", lw=5, solid_capstyle="round", zorder=5)
        ax.plot([x], [0.0], "o", ms=5, color="black", zorder=6)
