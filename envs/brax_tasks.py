"""Hand-made baseline controllers and goal sets for two Brax physics tasks.

Each task is a `brax.envs.base.Wrapper` around Brax's own environment that adds

- ``baseline_policy(obs)``: a pure-JAX controller computed from the observation alone; it takes
  observations of shape ``[..., obs_dim]`` and returns actions in ``[-1, 1]`` of shape
  ``[..., action_size]``;
- ``state.metrics["goal_reached"]`` (float32 scalar, 1.0 inside the task's goal set), present from
  ``reset`` on and updated by every ``step``; ``episode_metrics = ("goal_reached",)`` names it as
  the episode's outcome (its value at the last step).

Observations, rewards, terminations and physics are Brax's, untouched.

Reacher (``brax:reacher``)
--------------------------
A planar two-link arm (hinges ``q1``, ``q2`` about z, each with armature 1 and damping 1; the
elbow limited to ``|q2| ≤ 3``) must put its fingertip on a target drawn in a disk of radius 0.2
around the base (radius uniform in ``[0, 0.2)``). Observation (11,)::

    [cos q1, cos q2, sin q1, sin q2, target x, target y, v' x, v' y, dx, dy, dz]

with ``(dx, dy, dz) = tip - target`` (``dz = 0``). Kinematics (link 0.1 m, fingertip 0.11 m
beyond the elbow: body1's offset in ``reacher.xml`` and the offset Brax's ``_get_obs`` uses)::

    tip(q) = (l1 cos q1 + l2 cos(q1 + q2),  l1 sin q1 + l2 sin(q1 + q2)),   l1 = 0.1, l2 = 0.11
    J(q)   = [[-l1 sin q1 - l2 sin(q1+q2),  -l2 sin(q1+q2)],
              [ l1 cos q1 + l2 cos(q1+q2),   l2 cos(q1+q2)]]           # d tip / dq

Brax's "fingertip velocity" ``v'`` is not ``J(q) qdot``: it adds ``ω2 × (0.11, 0, 0)`` to the
elbow velocity with the offset taken in the world frame instead of the forearm's, so (checked
numerically on MJX)::

    v' = J'(q) qdot,   J'(q) = [[-l1 sin q1,        0 ],
                                [ l1 cos q1 + l2,   l2]]

which equals the true tip velocity only while the forearm points along +x.

Baseline: Jacobian-transpose PD control of the fingertip, i.e. a virtual spring pulling the tip to
the target plus a damper, converted to normalised actions by the actuator gear (200 on MJX, so
action 1 is a torque of 200 N·m) and clipped::

    tau = J(q)^T (-Kp (tip(q) - target))  -  Kd J'(q)^T v'        # Kp = 2e4 N/m, Kd = 500 N·s/m
    a   = clip(tau / gear, -1, 1)

Two choices differ from the textbook ``J^T (-Kp e - Kd v_tip)``, both because of what the
observation holds. (1) The spring uses ``tip(q)`` from the joint angles and the observed target
rather than the observed ``(dx, dy)``, which Brax computes from the body poses one physics sub-step
before ``q``; with a stiff spring that lag destabilises the arm. (2) The damper uses ``J'^T``,
matching the observed velocity, so its power ``-Kd |J' qdot|²`` is never positive (``J^T v'``
is not dissipative and made the arm spin). Gains were tuned by rollouts on MJX (batches of 256
episodes from Brax's initial-state distribution): 92-95% of episodes are in the goal set after 100
steps, 97-99% after 200 and 98-100% at step 1000 (none in either with zero action). They are
tuned for MJX only (Brax's positional/spring backends use gear 25 and another timestep). The slow
cases are targets near the base: the arm starts nearly straight (``|q2| ≤ 0.1``), a saddle of ``|tip - target|²`` where the
J^T torque folding the elbow is small, and reaching the base needs the elbow near its limit.

Goal set: ``|(dx, dy)| < GOAL_RADIUS = 0.02`` m, with Brax's own tip-target vector (the one its
reward uses). The fingertip sphere's radius is 0.01 m and the target's 0.009 m, so the two spheres
overlap or nearly touch; every target is reachable within it (the elbow limit keeps the tip at
least 0.018 m from the base).

Inverted pendulum (``brax:inverted_pendulum``)
----------------------------------------------
A cart on a rail (``x``, limited to ±1 m) carries a hinged pole (angle ``θ``, 0 upright). Brax
scales the action ``a ∈ [-1, 1]`` to the motor control ``3 a`` (gear 100, i.e. a force of up to
300 N) and ends the episode (``done = 1``) when ``|θ| > 0.2``. Observation (4,)::

    [x, θ, xdot, θdot]

Baseline: linear state feedback ``a = clip(-K obs, -1, 1)`` with ``K`` the discrete-time LQR gain
for the physics step linearised at the upright equilibrium. The linearisation
``s' = A s + B a`` over one environment step (``n_frames`` physics steps of ``opt.timestep``, the
action held) is computed at construction by MuJoCo's finite differences
(``mujoco.mjd_transitionFD``) on the environment's own MuJoCo model, and ``K`` minimises
``Σ sᵀ Q s + R a²`` with ``Q = diag(LQR_Q) = diag(1, 10, 0.1, 0.1)``, ``R = LQR_R = 1``. On the
default MJX backend (``dt = 2 × 0.02`` s) this gives ``K ≈ [-0.56, -3.99, -0.65, -0.59]``: the
cart is pushed towards the side the pole leans to (``θ > 0`` leans towards ``+x``), and the
positive feedback on ``x`` is the usual non-minimum-phase detour (to return to ``x = 0`` the cart
first moves out, so that the pole leans back towards the centre). From Brax's initial states
(every coordinate ``U(-0.01, 0.01)``) none of 128 MJX episodes fell in 1000 steps (``|θ| <
0.01``, ``|a| < 0.05`` throughout); with zero or uniformly random actions all fell.

Goal set: ``|θ| < 0.05`` rad and ``|x| < GOAL_CART = 0.1`` m (upright and centred).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State, Wrapper
from rlx.envs.control import dlqr, linearise_mujoco


def _with_goal(state: State, goal: jax.Array) -> State:
    """`state` with ``metrics["goal_reached"]`` set to `goal` (a float32 scalar)."""
    return state.replace(metrics={**state.metrics, "goal_reached": goal.astype(jnp.float32)})


class GoalTask(Wrapper):
    """A wrapped env whose ``metrics["goal_reached"]`` is ``self._goal(obs)`` after every reset
    and step (subclasses define `_goal`); the goal at an episode's last step is its outcome."""

    episode_metrics = ("goal_reached",)

    def _goal(self, obs: jax.Array) -> jax.Array:
        raise NotImplementedError

    def reset(self, rng: jax.Array) -> State:
        """The wrapped env's reset, plus ``metrics["goal_reached"]``."""
        state = self.env.reset(rng)
        return _with_goal(state, self._goal(state.obs))

    def step(self, state: State, action: jax.Array) -> State:
        """The wrapped env's step, plus ``metrics["goal_reached"]`` on the state reached."""
        state = self.env.step(state, action)
        return _with_goal(state, self._goal(state.obs))


def jacobian_transpose_pd(
    obs: jax.Array,
    kp: float | jax.Array,
    kd: float | jax.Array,
    gear: jax.Array,
    l1: float = 0.1,
    l2: float = 0.11,
) -> jax.Array:
    """Reacher's Jacobian-transpose PD law ``clip((J^T (-Kp e) - Kd J'^T v') / gear, -1, 1)``.

    `obs` is Brax's Reacher observation ``[..., 11]``, `e = tip(q) - target` and `v'` the observed
    fingertip velocity (see the module docstring); returns normalised joint torques ``[..., 2]``.
    """
    obs = jnp.asarray(obs, jnp.float32)
    c1, c2, s1, s2 = obs[..., 0], obs[..., 1], obs[..., 2], obs[..., 3]
    c12 = c1 * c2 - s1 * s2  # cos(q1 + q2)
    s12 = s1 * c2 + c1 * s2  # sin(q1 + q2)
    # Spring: F = -Kp (tip(q) - target), tau = J(q)^T F.
    fx = -kp * (l1 * c1 + l2 * c12 - obs[..., 4])
    fy = -kp * (l1 * s1 + l2 * s12 - obs[..., 5])
    tau1 = (-l1 * s1 - l2 * s12) * fx + (l1 * c1 + l2 * c12) * fy
    tau2 = -l2 * s12 * fx + l2 * c12 * fy
    # Damper: tau -= Kd J'(q)^T v', with J' = [[-l1 sin q1, 0], [l1 cos q1 + l2, l2]].
    vx, vy = obs[..., 6], obs[..., 7]
    tau1 = tau1 - kd * (-l1 * s1 * vx + (l1 * c1 + l2) * vy)
    tau2 = tau2 - kd * (l2 * vy)
    tau = jnp.stack([tau1, tau2], axis=-1)
    return jnp.clip(tau / gear, -1.0, 1.0).astype(jnp.float32)


class ReacherBaseline(GoalTask):
    """Brax's Reacher with a Jacobian-transpose PD baseline and a fingertip-on-target goal set."""

    L1 = 0.1  # m: base hinge to elbow (body1's offset in reacher.xml).
    L2 = 0.11  # m: elbow to fingertip (the fingertip body's offset; Brax's _get_obs uses it too).
    KP = 20000.0  # N/m: virtual spring pulling the fingertip to the target.
    KD = 500.0  # N·s/m: virtual damper on Brax's fingertip-velocity observation.
    GOAL_RADIUS = 0.02  # m: goal_reached when |tip - target| (xy) is below this.

    def __init__(self, env: Env, kp: float = KP, kd: float = KD):
        """Wrap `env` (Brax's Reacher, any backend); the actuator gear is read from its system."""
        super().__init__(env)
        self.kp = float(kp)
        self.kd = float(kd)
        self.gear = np.asarray(env.sys.actuator.gear, np.float32).reshape(2)

    def _goal(self, obs: jax.Array) -> jax.Array:
        """1.0 when the fingertip is within GOAL_RADIUS of the target (in the plane), else 0.0."""
        dist = jnp.sqrt(jnp.sum(jnp.square(obs[..., 8:10]), axis=-1))
        return (dist < self.GOAL_RADIUS).astype(jnp.float32)

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """Jacobian-transpose PD control of the fingertip; actions ``[..., 2]`` in [-1, 1]."""
        return jacobian_transpose_pd(obs, self.kp, self.kd, self.gear, self.L1, self.L2)


def linearise_step(env: Env, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of ``s' = A s + B a`` for one env step at the model's initial (upright) state.

    `s` is ``[q, qd]`` and `a` the normalised action, scaled to the control as Brax's
    InvertedPendulum does (``ctrl = lo + (a + 1)(hi - lo)/2``). One MuJoCo step is linearised by
    finite differences on a copy of the env's MuJoCo model (with the env's physics timestep), then
    composed ``n_frames`` times with the control held.
    """
    model = copy.copy(env.sys.mj_model)
    model.opt.timestep = float(env.sys.opt.timestep)
    n_frames = round(float(env.dt) / float(env.sys.opt.timestep))
    a, b = linearise_mujoco(model, n_frames, eps=eps)
    ctrl_range = np.asarray(env.sys.actuator.ctrl_range, np.float64)
    half_span = 0.5 * (ctrl_range[:, 1] - ctrl_range[:, 0])
    return a, b * half_span[None, :]


class InvertedPendulumBaseline(GoalTask):
    """Brax's InvertedPendulum with an LQR balance baseline and an upright-and-centred goal set."""

    LQR_Q = (1.0, 10.0, 0.1, 0.1)  # state weights on [x, θ, xdot, θdot].
    LQR_R = 1.0  # action weight.
    GOAL_ANGLE = 0.05  # rad: goal_reached needs |θ| below this ...
    GOAL_CART = 0.1  # m: ... and |x| below this.

    def __init__(self, env: Env):
        """Wrap `env` (Brax's InvertedPendulum) and compute the LQR gain from its MuJoCo model."""
        super().__init__(env)
        a, b = linearise_step(env)
        k = dlqr(a, b, np.diag(self.LQR_Q), np.array([[self.LQR_R]]))
        self.gain = k.reshape(4).astype(np.float32)

    def _goal(self, obs: jax.Array) -> jax.Array:
        """1.0 when |θ| < GOAL_ANGLE and |x| < GOAL_CART, else 0.0."""
        ok = (jnp.abs(obs[..., 1]) < self.GOAL_ANGLE) & (jnp.abs(obs[..., 0]) < self.GOAL_CART)
        return ok.astype(jnp.float32)

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """LQR state feedback ``clip(-K obs, -1, 1)``; actions ``[..., 1]``."""
        obs = jnp.asarray(obs, jnp.float32)
        u = -(obs @ jnp.asarray(self.gain))
        return jnp.clip(u, -1.0, 1.0)[..., None].astype(jnp.float32)


__all__ = [
    "GoalTask",
    "InvertedPendulumBaseline",
    "ReacherBaseline",
    "jacobian_transpose_pd",
    "linearise_step",
]
