"""Hand-made baseline controllers and goal sets for Playground's two swing-up tasks.

Each task wraps a `rlx.envs.playground.PlaygroundEnv` and adds, like `rlx.envs.brax_tasks`:

- ``baseline_policy(obs)``: energy pumping plus an LQR catch near upright, a pure-JAX function of
  the observation (batched over leading axes), actions in ``[-1, 1]``;
- ``state.metrics["goal_reached"]``: 1.0 inside the upright goal set, on the state after the step;
  ``episode_metrics = ("goal_reached",)`` makes its value at the episode's last step the outcome.

Observations, rewards and physics are Playground's, untouched. The physical constants the
controllers need are read from the task's MuJoCo model, and the LQR gain is the discrete-time
gain for one control step linearised at upright by MuJoCo's finite differences
(`rlx.envs.control.linearise_mujoco`).

Pendulum (``playground:PendulumSwingup``)
-----------------------------------------
A pole on a hinge (angle ``θ``, 0 upright, about +y; mass ``m`` with its centre at ``l`` from the
pivot; inertia about the pivot ``I``), torque ``u = ctrl`` with ``|ctrl| <= 1``, while lifting needs
``m g l ≈ 4.9``: the pole has to be swung up. Observation ``[sin θ, cos θ, θdot]`` (the pole frame's xz and zz entries). Energy
``E = I θdot²/2 + m g l (cos θ - 1)`` (0 upright at rest) obeys ``dE/dt = u θdot`` (less damping),
so the pumping law ``u = k_E (E_ref - E) θdot`` (``E_ref`` a little above 0) drives it to the top;
an LQR gain takes over within ``CATCH_ANGLE`` / ``CATCH_SPEED`` of upright.

Cart-pole (``playground:CartpoleSwingup``)
-------------------------------------------
A cart on a rail (``x``, limited to ±1.8 m, force ``gear * ctrl``) carries a hinged pole
(``θ``, 0 upright, ``θ > 0`` leaning towards +x). Observation ``[x, cos θ, sin θ, xdot, θdot]``.
Per unit ``m l``, the pole's energy ``E = (I / (m l)) θdot²/2 + g (cos θ - 1)`` obeys
``dE/dt = -θdot cos θ xddot``; the Åström-Furuta law asks for the cart acceleration
``xddot = sat(k_E (E - E_ref) θdot cos θ) - k_x x - k_v xdot`` (the last two terms keep the cart
on the rail) and applies the force ``(m_cart + m_pole) xddot``. Near upright an LQR gain on
``[x, θ, xdot, θdot]`` balances it.

Goal sets: pendulum ``|θ| < 0.1`` and ``|θdot| < 0.5``; cart-pole ``|θ| < 0.2``, ``|θdot| < 1``
and ``|x| < 1`` (as for rlx's own swing-ups). Success of the baselines, measured by rollouts on
MJX from Playground's initial states, is in each class's docstring and checked by
tests/test_playground.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from rlx.envs.brax_tasks import GoalTask
from rlx.envs.control import dlqr, linearise_mujoco
from rlx.envs.playground import PlaygroundEnv


def _pole(model: mujoco.MjModel, body: str) -> tuple[float, float, float]:
    """``(m, l, I)`` of a pole body: its mass, the distance of its centre of mass from its joint
    (along the body's z axis) and its inertia about the joint axis (y)."""
    b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
    m, arm = float(model.body_mass[b]), float(model.body_ipos[b][2])
    return m, arm, float(model.body_inertia[b][1]) + m * arm * arm


class _SwingupBaseline(GoalTask):
    """Shared code of the two tasks: gravity and the LQR gain from the task's MuJoCo model."""

    def __init__(self, env: PlaygroundEnv):
        super().__init__(env)
        self.gravity = float(-env.mj_model.opt.gravity[2])

    def _lqr(self, q: tuple[float, ...], r: float) -> np.ndarray:
        """The LQR gain on ``[qpos, qvel]`` for one control step linearised at upright."""
        a, b = linearise_mujoco(self.env.mj_model, self.env.n_substeps)
        return dlqr(a, b, np.diag(q), np.array([[r]])).reshape(-1).astype(np.float32)


class PendulumSwingupBaseline(_SwingupBaseline):
    """Playground's PendulumSwingup with an energy-pumping + LQR baseline."""

    CATCH_ANGLE = 0.5  # rad: LQR when |θ| < CATCH_ANGLE ...
    CATCH_SPEED = 3.0  # rad/s: ... and |θdot| < CATCH_SPEED.
    PUMP_GAIN = 2.0  # k_E.
    PUMP_ENERGY_MARGIN = 0.05  # E_ref = margin * m g l.
    LQR_Q = (10.0, 1.0)  # weights on [θ, θdot].
    LQR_R = 0.1

    def __init__(self, env: PlaygroundEnv):
        super().__init__(env)
        self.mass, self.length, self.inertia = _pole(env.mj_model, "pole")
        self.gain = self._lqr(self.LQR_Q, self.LQR_R)

    def _goal(self, obs: jax.Array) -> jax.Array:
        """1.0 when |θ| < 0.1 and |θdot| < 0.5."""
        th = jnp.arctan2(obs[..., 0], obs[..., 1])
        return ((jnp.abs(th) < 0.1) & (jnp.abs(obs[..., 2]) < 0.5)).astype(jnp.float32)

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """Energy pumping with an LQR catch; actions ``[..., 1]`` in [-1, 1]."""
        obs = jnp.asarray(obs, jnp.float32)
        sin_th, cos_th, thdot = obs[..., 0], obs[..., 1], obs[..., 2]
        th = jnp.arctan2(sin_th, cos_th)
        mgl = self.mass * self.gravity * self.length
        energy = 0.5 * self.inertia * thdot**2 + mgl * (cos_th - 1.0)
        u_pump = self.PUMP_GAIN * (self.PUMP_ENERGY_MARGIN * mgl - energy) * thdot
        u_pump = jnp.where(jnp.abs(thdot) < 1e-3, 1.0, u_pump)  # kick from rest
        u_lqr = -(self.gain[0] * th + self.gain[1] * thdot)
        near_top = (jnp.abs(th) < self.CATCH_ANGLE) & (jnp.abs(thdot) < self.CATCH_SPEED)
        return jnp.clip(jnp.where(near_top, u_lqr, u_pump), -1.0, 1.0)[..., None]


class CartpoleSwingupBaseline(_SwingupBaseline):
    """Playground's CartpoleSwingup with an Åström-Furuta energy + LQR baseline."""

    CATCH_ANGLE = 0.3  # rad
    CATCH_SPEED = 2.0  # rad/s
    PUMP_GAIN = 0.5  # k_E
    PUMP_MAX_ACCEL = 6.0  # m/s²
    PUMP_ENERGY_MARGIN = 0.02  # E_ref = margin * g
    CENTER_POS_GAIN = 1.0  # k_x, 1/s²
    CENTER_VEL_GAIN = 1.5  # k_v, 1/s
    LQR_Q = (1.0, 10.0, 1.0, 1.0)  # weights on [x, θ, xdot, θdot]
    LQR_R = 0.05

    def __init__(self, env: PlaygroundEnv):
        super().__init__(env)
        model = env.mj_model
        self.pole_mass, self.length, self.inertia = _pole(model, "pole_1")
        cart = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "cart")
        self.total_mass = float(model.body_mass[cart]) + self.pole_mass
        self.gear = float(model.actuator_gear[0, 0])
        self.gain = self._lqr(self.LQR_Q, self.LQR_R)

    def _goal(self, obs: jax.Array) -> jax.Array:
        """1.0 when |θ| < 0.2, |θdot| < 1 and |x| < 1."""
        th = jnp.arctan2(obs[..., 2], obs[..., 1])
        ok = (jnp.abs(th) < 0.2) & (jnp.abs(obs[..., 4]) < 1.0) & (jnp.abs(obs[..., 0]) < 1.0)
        return ok.astype(jnp.float32)

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """Energy pumping with cart centring and an LQR catch; actions ``[..., 1]`` in [-1, 1]."""
        obs = jnp.asarray(obs, jnp.float32)
        x, cos_th, sin_th, xdot, thdot = (obs[..., i] for i in range(5))
        th = jnp.arctan2(sin_th, cos_th)
        g = self.gravity
        per_ml = self.inertia / (self.pole_mass * self.length)
        energy = 0.5 * per_ml * thdot**2 + g * (cos_th - 1.0)
        pump = self.PUMP_GAIN * (energy - self.PUMP_ENERGY_MARGIN * g) * thdot * cos_th
        acc = jnp.clip(pump, -self.PUMP_MAX_ACCEL, self.PUMP_MAX_ACCEL)
        acc = acc - self.CENTER_POS_GAIN * x - self.CENTER_VEL_GAIN * xdot
        at_rest = (jnp.abs(thdot) < 1e-3) & (jnp.abs(energy + 2 * g) < 1e-3)
        acc = jnp.where(at_rest, 1.0, acc)  # kick from rest
        u_pump = self.total_mass * acc / self.gear
        k = self.gain
        u_lqr = -(k[0] * x + k[1] * th + k[2] * xdot + k[3] * thdot)
        near_top = (jnp.abs(th) < self.CATCH_ANGLE) & (jnp.abs(thdot) < self.CATCH_SPEED)
        return jnp.clip(jnp.where(near_top, u_lqr, u_pump), -1.0, 1.0)[..., None]
