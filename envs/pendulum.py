"""Pendulum swing-up: the Gym ``Pendulum-v1`` physics as a pure-JAX Brax environment.

Physical state (stored in ``State.pipeline_state``, float32, shape ``(2,)``): ``[θ, θdot]``
with ``θ = 0`` upright and ``θ = ±π`` hanging down. ``θ`` is kept wrapped to ``[-π, π)``.

Dynamics (semi-implicit Euler, exactly as Gym ``Pendulum-v1``)::

    u       = max_torque * clip(action, -1, 1)                       # torque, N·m
    θdot'   = clip(θdot + (3 g / (2 l) sin θ + 3 / (m l²) u) dt, -max_speed, max_speed)
    θ'      = wrap(θ + θdot' dt)

with defaults ``g = 10``, ``m = 1``, ``l = 1``, ``dt = 0.05``, ``max_torque = 2``,
``max_speed = 8``. The torque limit is well below the static torque needed to lift the pole
(``m g l / 2 = 5``), so the pole has to be swung up by pumping energy.

Observation (float32, shape ``(3,)``): ``[cos θ, sin θ, θdot]``.

Action (float32, shape ``(1,)``): in ``[-1, 1]`` (clipped inside ``step``), scaled by
``max_torque``.

Reward (as in Gym, evaluated on the state *before* the step and the applied torque)::

    r = -(wrap(θ)² + 0.1 θdot² + 0.001 u²)        # in [-(π² + 6.4 + 0.004), 0]

Termination: none, ``done`` is always 0. Episodes are cut by the registry's time limit
(``episode_length = 200`` steps, i.e. 10 s).

Goal set (``metrics["goal_reached"]``, on the state *after* the step):
``|wrap(θ)| < 0.1`` and ``|θdot| < 0.5`` (upright and still).

Initial-state distribution (swing-up, unlike Gym's uniform start): hanging down,
``θ = π + U(-0.5, 0.5)`` and ``θdot ~ U(-0.5, 0.5)`` (half-widths set by
``init_angle_noise`` / ``init_velocity_noise``).

Baseline controller (``baseline_policy``): energy pumping plus an LQR catch. With the scaled
energy ``E = θdot² / 2 + a (cos θ - 1)`` (``a = 3g/(2l)``, ``E = 0`` at rest upright) one has
``dE/dt = b u θdot`` (``b = 3/(m l²)``), so ``u = sat(k_E (E_ref - E) θdot)`` drives ``E`` to
``E_ref`` (slightly above zero, so the pole goes over the top instead of creeping towards it).
When the pole is within ``CATCH_ANGLE = 0.5`` rad of upright and ``|θdot| < CATCH_SPEED = 3``
rad/s, a discrete-time LQR gain (from ``scipy.linalg.solve_discrete_are`` on the exact
linearisation of the semi-implicit Euler step) stabilises it; its torque is clipped to the limit.
``baseline_bias`` (default 0) adds a constant to the controller's normalised action, clipped to
[-1, 1]: a miscalibrated controller (an actuator offset) whose error a residual learner has to
learn to cancel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State
from rlx.envs.control import dlqr
from rlx.envs.drawing import fix_limits

from rlx.errors import RlxError

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _wrap(angle: jax.Array) -> jax.Array:
    """Wrap an angle to ``[-π, π)``."""
    return jnp.mod(angle + jnp.pi, 2.0 * jnp.pi) - jnp.pi


class PendulumSwingup(Env):
    """Gym Pendulum-v1 physics started hanging down; the task is to swing up and balance."""

    episode_length: int = 200

    # Baseline controller constants (see the module docstring).
    CATCH_ANGLE = 0.5  # rad: switch to LQR when |wrap(θ)| < CATCH_ANGLE ...
    CATCH_SPEED = 3.0  # rad/s: ... and |θdot| < CATCH_SPEED.
    PUMP_GAIN = 1.0  # k_E of the energy-pumping law.
    PUMP_ENERGY_MARGIN = 0.05  # E_ref = PUMP_ENERGY_MARGIN * a (a little above the top).

    def __init__(
        self,
        g: float = 10.0,
        m: float = 1.0,
        l: float = 1.0,  # noqa: E741
        dt: float = 0.05,
        max_torque: float = 2.0,
        max_speed: float = 8.0,
        init_angle_noise: float = 0.5,
        init_velocity_noise: float = 0.5,
        baseline_bias: float = 0.0,
    ):
        """Set the physical constants (defaults are Gym Pendulum-v1's), the LQR gain and the
        baseline controller's offset (in normalised action units, within [-2, 2])."""
        if isinstance(baseline_bias, bool) or not isinstance(baseline_bias, int | float):
            raise RlxError(f"baseline_bias must be a number in [-2, 2], got {baseline_bias!r}.")
        if not -2.0 <= baseline_bias <= 2.0:
            raise RlxError(f"baseline_bias must be in [-2, 2], got {baseline_bias}.")
        self.baseline_bias = float(baseline_bias)
        self.g = float(g)
        self.m = float(m)
        self.l = float(l)
        self.dt = float(dt)
        self.max_torque = float(max_torque)
        self.max_speed = float(max_speed)
        self.init_angle_noise = float(init_angle_noise)
        self.init_velocity_noise = float(init_velocity_noise)
        # θddot = a sin θ + b u
        self._a = 3.0 * self.g / (2.0 * self.l)
        self._b = 3.0 / (self.m * self.l**2)
        self._lqr_gain = self._compute_lqr_gain()

    def _compute_lqr_gain(self) -> np.ndarray:
        """Discrete LQR gain K (u = -K [θ, θdot]) for the Euler step linearised at upright."""
        a, b, dt = self._a, self._b, self.dt
        # θdot' = θdot + dt (a θ + b u);  θ' = θ + dt θdot' = (1 + a dt²) θ + dt θdot + b dt² u
        A = np.array([[1.0 + a * dt**2, dt], [a * dt, 1.0]])
        B = np.array([[b * dt**2], [b * dt]])
        Q = np.diag([1.0, 0.1])
        R = np.array([[0.1]])
        K = dlqr(A, B, Q, R)
        return K.reshape(2).astype(np.float32)

    @property
    def observation_size(self) -> int:
        """Observation length: [cos θ, sin θ, θdot]."""
        return 3

    @property
    def action_size(self) -> int:
        """Action length: one normalised torque."""
        return 1

    @property
    def backend(self) -> str:
        """Physics backend name (pure JAX)."""
        return "jax"

    def _obs(self, q: jax.Array) -> jax.Array:
        """Observation [cos θ, sin θ, θdot] from the physical state [θ, θdot]."""
        return jnp.stack([jnp.cos(q[0]), jnp.sin(q[0]), q[1]]).astype(jnp.float32)

    def _goal(self, q: jax.Array) -> jax.Array:
        """1.0 when upright and still (|wrap θ| < 0.1 and |θdot| < 0.5), else 0.0."""
        ok = (jnp.abs(_wrap(q[0])) < 0.1) & (jnp.abs(q[1]) < 0.5)
        return ok.astype(jnp.float32)

    def reset(self, rng: jax.Array) -> State:
        """Sample a hanging-down initial state θ = π + U(±0.5), θdot = U(±0.5)."""
        k1, k2 = jax.random.split(rng)
        dth = jax.random.uniform(k1, (), jnp.float32, -self.init_angle_noise, self.init_angle_noise)
        thdot = jax.random.uniform(
            k2, (), jnp.float32, -self.init_velocity_noise, self.init_velocity_noise
        )
        q = jnp.stack([_wrap(jnp.float32(np.pi) + dth), thdot]).astype(jnp.float32)
        return State(
            pipeline_state=q,
            obs=self._obs(q),
            reward=jnp.zeros((), jnp.float32),
            done=jnp.zeros((), jnp.float32),
            metrics={"goal_reached": self._goal(q)},
            info={},
        )

    def step(self, state: State, action: jax.Array) -> State:
        """Advance one semi-implicit Euler step of dt with torque max_torque * clip(action)."""
        q = state.pipeline_state
        th, thdot = q[0], q[1]
        act = jnp.clip(jnp.asarray(action, jnp.float32).reshape(-1)[0], -1.0, 1.0)
        u = jnp.float32(self.max_torque) * act
        thddot = jnp.float32(self._a) * jnp.sin(th) + jnp.float32(self._b) * u
        new_thdot = jnp.clip(thdot + thddot * self.dt, -self.max_speed, self.max_speed)
        new_th = _wrap(th + new_thdot * self.dt)
        new_q = jnp.stack([new_th, new_thdot]).astype(jnp.float32)
        cost = _wrap(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        return state.replace(
            pipeline_state=new_q,
            obs=self._obs(new_q),
            reward=(-cost).astype(jnp.float32),
            done=jnp.zeros((), jnp.float32),
            metrics={**state.metrics, "goal_reached": self._goal(new_q)},
        )

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """Energy-pumping swing-up with an LQR catch near upright; returns an action in [-1, 1]."""
        obs = jnp.asarray(obs, jnp.float32)
        cos_th, sin_th, thdot = obs[..., 0], obs[..., 1], obs[..., 2]
        th = jnp.arctan2(sin_th, cos_th)  # wrapped, 0 = upright
        # Energy pumping: dE/dt = b u θdot, push E towards E_ref > 0.
        energy = 0.5 * thdot**2 + self._a * (cos_th - 1.0)
        e_ref = self.PUMP_ENERGY_MARGIN * self._a
        u_pump = self.PUMP_GAIN * (e_ref - energy) * thdot
        # Kick from rest so the pumping law cannot stall exactly at the bottom.
        u_pump = jnp.where(jnp.abs(thdot) < 1e-3, self.max_torque, u_pump)
        # LQR catch.
        k = self._lqr_gain
        u_lqr = -(k[0] * th + k[1] * thdot)
        near_top = (jnp.abs(th) < self.CATCH_ANGLE) & (jnp.abs(thdot) < self.CATCH_SPEED)
        u = jnp.where(near_top, u_lqr, u_pump)
        act = jnp.clip(u / self.max_torque, -1.0, 1.0)
        act = jnp.clip(act + self.baseline_bias, -1.0, 1.0)
        return act[..., None].astype(jnp.float32)

    def draw(self, ax: Axes, states: np.ndarray, t: int) -> None:
        """Draws step `t` of a rollout (``states``: physical states ``[T, 2]``): the pole of length
        ``l`` from the pivot at angle ``θ`` from upright (``θ > 0`` leans right), the upright
        target dotted."""
        th = float(states[t, 0])
        tip_x, tip_y = self.l * np.sin(th), self.l * np.cos(th)
        reach = 1.25 * self.l
        fix_limits(ax, (-reach, reach), (-reach, reach))
        ax.plot([0.0, 0.0], [0.0, reach], ls=":", color="0.6")
        ax.plot([0.0, tip_x], [0.0, tip_y], color="tab:red", lw=6, solid_capstyle="round")
        ax.plot([tip_x], [tip_y], "o", ms=12, color="tab:red")
        ax.plot([0.0], [0.0], "o", ms=6, color="black", zorder=5)
