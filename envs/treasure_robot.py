"""Treasure-collecting robot: a constant-speed unicycle that may catch a moving treasure on its
way to a goal, pure JAX.

The ``RobotNavigationConstSpeedCatch-v0`` task of Bolychev et al. (2026), "An
Agency-Transferring Model-Free Policy Enhancement Technique": the baseline controller drives
straight to the goal; a better policy also catches a randomly moving treasure first.

Physical state (stored in ``State.pipeline_state``, a dict of fixed-shape arrays)::

    robot    float32 (3,)  [x, y, θ]                    θ wrapped to [-π, π)
    treasure float32 (5,)  [x₁, y₁, vx₁, vy₁, collected]
    key      uint32  (2,)  PRNG key for the treasure's motion noise

Workspace ``[0, 1]²``; goal ``p_g = (0, 0.5)``; goal set ``G = {p : ‖p - p_g‖ ≤ 0.05}``.

Action (float32, shape ``(1,)``): in ``[-1, 1]`` (clipped inside ``step``), the turn rate
``ω = π a ∈ [-π, π]`` rad/s.

Robot dynamics (unicycle at constant speed ``v = 0.15``, ``dt = 0.05``)::

    x' = clip(x + v dt cos θ, 0, 1),   y' = clip(y + v dt sin θ, 0, 1),   θ' = wrap(θ + ω dt)

Treasure dynamics (while not collected; top speed ``u = 0.12``, noise ``σ = 0.25 u = 0.03``;
as in the official code, aidagroup/calf-enhance@afb5edc, the treasure moves *before* the robot)::

    w   = v₁ + σ ε,  ε ~ N(0, I₂)            v₁' = w · min(1, u / ‖w‖)    (speed at most u)
    p₁' = p₁ + v₁' dt,  then clipped to [r₁, 1 - r₁]² = [0.05, 0.95]², and a velocity component
          flips sign where its coordinate was clipped.

Capture: the treasure is caught on the first step after which ``‖p - p₁‖ ≤ 0.08`` (the robot's
position and the treasure's, both after the step). It is then gone: ``collected = 1``, it stops
moving (its position stays at the capture point) and no longer counts. Its drawn radius is
``0.05`` (informative only).

Observation (float32, shape ``(9,)``)::

    [x, y, cos θ, sin θ, x_g, y_g, x₁, y₁, r₁]

with ``r₁ = 0.05`` (the treasure's radius, as in the original) while it is available and
``r₁ = 0`` once it has been collected.

Reward (``reward="official"``, the default: the official env's, on the robot's position after
the step and the treasure's before the capture check)::

    while the treasure is available (the capture step included):
        r = -‖p - p₁‖ - 0.2 |wrap(atan2(p₁ - p) - θ)| / π + 50 · 1[capture on this step]
    once it has been caught:  r = 0 every step, the goal step included

so a return is +50 minus the pursuit's distance costs (the paper's robot returns end near +30),
and an episode that never catches the treasure pays the distance to it all the way.
``reward="goal_after_catch"`` (registry name ``treasure_robot_goal_reward``, rlx's reading before
the official code was checked) keeps paying ``-‖p - p_g‖ - 0.2 |heading error to p_g| / π``
after the catch (the capture step measured against the goal).

Termination: ``done = 1`` on the step that ends in ``G``. Time-out truncation
(``episode_length = 1000`` steps, 50 s) is left to the registry's Brax ``EpisodeWrapper``.

Metrics (float32 scalars, present from ``reset``; all three are ``episode_metrics``):

- ``goal_reached``: 1.0 while the robot is in ``G``;
- ``treasure_collected``: 1.0 once the treasure has been caught (stays 1);
- ``combined``: ``(goal_reached + treasure_collected) / 2``.

Initial-state distribution: robot ``x ~ U(0.7, 0.9)``, ``y ~ U(0.1, 0.9)``, ``θ = π`` (facing
the goal side). Treasure (the official code's): ``x₁ ~ U(0.15, 0.85)``, ``y₁ ~ U(0.05, 0.95)``,
redrawn while it lies within ``r₁ + 0.005`` of the robot (up to 8 draws, then the last is
kept), direction angle ``~ U(0, 2π)``, speed ``0.12``.

Baseline controller (``baseline_policy``): a P-law steering to the goal that ignores the
treasure::

    ω = clip(1.0 · wrap(atan2(y_g - y, x_g - x) - θ), -π, π),     a = ω / π
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State
from rlx.envs.drawing import fix_limits, heading_marker, path

from rlx.errors import RlxError

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _wrap(angle: jax.Array) -> jax.Array:
    """Wrap an angle to ``[-π, π)``."""
    return jnp.mod(angle + jnp.pi, 2.0 * jnp.pi) - jnp.pi


def _bounce(pos: jax.Array, vel: jax.Array, low: float, high: float) -> tuple[jax.Array, jax.Array]:
    """Clip coordinates to ``[low, high]`` and flip the velocity components that were clipped."""
    out = (pos < low) | (pos > high)
    return jnp.clip(pos, low, high), jnp.where(out, -vel, vel)


REWARDS = ("official", "goal_after_catch")
SPAWN_DRAWS = 8


class TreasureRobot(Env):
    """Constant-speed unicycle that should catch a moving treasure before reaching the goal."""

    episode_length: int = 1000
    episode_metrics: tuple[str, ...] = ("goal_reached", "treasure_collected", "combined")
    metric_labels: ClassVar[dict[str, str]] = {
        "treasure_collected": "treasure rate",
        "combined": "combined",
    }
    rate_metrics: tuple[str, ...] = ("treasure_collected",)
    action_scale: tuple[float, ...] = (float(np.pi),)
    """Physical units per normalised action unit (the official action bound: ω ∈ [-π, π])."""

    DT = 0.05
    SPEED = 0.15
    GOAL = (0.0, 0.5)
    GOAL_RADIUS = 0.05
    TREASURE_SPEED = 0.12
    TREASURE_NOISE = 0.03
    TREASURE_RADIUS = 0.05
    CATCH_RADIUS = 0.08
    TREASURE_REWARD = 50.0
    HEADING_WEIGHT = 0.2
    BASELINE_GAIN = 1.0
    SPAWN_PADDING = 0.005

    def __init__(self, reward: str = "official") -> None:
        if reward not in REWARDS:
            raise RlxError(f"treasure_robot reward must be one of {REWARDS}, got {reward!r}.")
        self.reward_kind = reward

    @property
    def observation_size(self) -> int:
        """Observation length: [x, y, cos θ, sin θ, x_g, y_g, x₁, y₁, r₁]."""
        return 9

    @property
    def action_size(self) -> int:
        """Action length: one normalised turn rate."""
        return 1

    @property
    def backend(self) -> str:
        """Physics backend name (pure JAX)."""
        return "jax"

    # ----------------------------------------------------------------------------- helpers

    def _goal(self) -> jax.Array:
        return jnp.array(self.GOAL, jnp.float32)

    def _obs(self, ps: dict[str, jax.Array]) -> jax.Array:
        """Observation [x, y, cos θ, sin θ, x_g, y_g, x₁, y₁, r₁] from the physical state."""
        robot, tr = ps["robot"], ps["treasure"]
        r1 = self.TREASURE_RADIUS * (1.0 - tr[4])
        goal = self._goal()
        return jnp.stack(
            [
                robot[0],
                robot[1],
                jnp.cos(robot[2]),
                jnp.sin(robot[2]),
                goal[0],
                goal[1],
                tr[0],
                tr[1],
                r1,
            ]
        ).astype(jnp.float32)

    def in_goal(self, pos: jax.Array) -> jax.Array:
        """True where ``‖pos - p_g‖ ≤ 0.05``."""
        return jnp.linalg.norm(pos - self._goal(), axis=-1) <= self.GOAL_RADIUS

    def _pursuit_cost(self, robot: jax.Array, target: jax.Array) -> jax.Array:
        """``-‖target - p‖ - 0.2 |wrap(atan2(target - p) - θ)| / π``."""
        delta = target - robot[:2]
        heading_err = _wrap(jnp.arctan2(delta[1], delta[0]) - robot[2])
        return -jnp.linalg.norm(delta) - self.HEADING_WEIGHT * jnp.abs(heading_err) / jnp.pi

    def _reward(
        self, robot: jax.Array, treasure: jax.Array, was_collected: jax.Array, captured: jax.Array
    ) -> jax.Array:
        """The step's reward (see the module docstring) from the robot after the step, the
        treasure's position before the capture check and whether it was caught before/now."""
        bonus = self.TREASURE_REWARD * captured
        if self.reward_kind == "official":
            chasing = self._pursuit_cost(robot, treasure[:2]) + bonus
            r = jnp.where(was_collected, 0.0, chasing)
        else:
            target = jnp.where(was_collected | (captured > 0), self._goal(), treasure[:2])
            r = self._pursuit_cost(robot, target) + bonus
        return r.astype(jnp.float32)

    def _metrics(self, ps: dict[str, jax.Array]) -> dict[str, jax.Array]:
        goal = self.in_goal(ps["robot"][:2]).astype(jnp.float32)
        collected = ps["treasure"][4].astype(jnp.float32)
        return {
            "goal_reached": goal,
            "treasure_collected": collected,
            "combined": (0.5 * (goal + collected)).astype(jnp.float32),
        }

    # ----------------------------------------------------------------------------- Env API

    def reset(self, rng: jax.Array) -> State:
        """Robot at ``(U(0.7, 0.9), U(0.1, 0.9))`` facing ``θ = π``; the treasure as in the
        module docstring."""
        if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
            rng = jax.random.key_data(rng)
        k_rx, k_ry, k_tp, k_ta, k_next = jax.random.split(rng, 5)
        rx = jax.random.uniform(k_rx, (), jnp.float32, 0.7, 0.9)
        ry = jax.random.uniform(k_ry, (), jnp.float32, 0.1, 0.9)
        robot = jnp.stack([rx, ry, jnp.float32(-np.pi)]).astype(jnp.float32)  # wrap(π) = -π
        tpos = self._spawn_treasure(k_tp, robot[:2])
        angle = jax.random.uniform(k_ta, (), jnp.float32, 0.0, 2.0 * np.pi)
        tvel = self.TREASURE_SPEED * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        treasure = jnp.concatenate([tpos, tvel, jnp.zeros((1,), jnp.float32)]).astype(jnp.float32)
        ps = {"robot": robot, "treasure": treasure, "key": k_next}
        return State(
            pipeline_state=ps,
            obs=self._obs(ps),
            reward=jnp.zeros((), jnp.float32),
            done=jnp.zeros((), jnp.float32),
            metrics=self._metrics(ps),
            info={},
        )

    def _spawn_treasure(self, key: jax.Array, robot_pos: jax.Array) -> jax.Array:
        """The first of SPAWN_DRAWS draws of ``(U(0.15, 0.85), U(0.05, 0.95))`` farther than
        ``r₁ + 0.005`` from the robot (the last draw if none is)."""
        low = jnp.array([0.1 + self.TREASURE_RADIUS, self.TREASURE_RADIUS], jnp.float32)
        high = jnp.array([0.9 - self.TREASURE_RADIUS, 1.0 - self.TREASURE_RADIUS], jnp.float32)
        draws = jax.random.uniform(key, (SPAWN_DRAWS, 2), jnp.float32, low, high)
        far = (
            jnp.linalg.norm(draws - robot_pos, axis=-1) >= self.TREASURE_RADIUS + self.SPAWN_PADDING
        )
        first = jnp.where(far.any(), jnp.argmax(far), SPAWN_DRAWS - 1)
        return draws[first]

    def _move_treasure(self, tr: jax.Array, key: jax.Array) -> jax.Array:
        """One step of the treasure's noisy motion, speed capped at u, bounced off
        ``[r₁, 1 - r₁]²`` (a caught treasure stays put); returns ``[x₁, y₁, vx₁, vy₁]``."""
        w = tr[2:4] + self.TREASURE_NOISE * jax.random.normal(key, (2,), jnp.float32)
        speed = jnp.linalg.norm(w)
        vel = w * jnp.minimum(1.0, self.TREASURE_SPEED / jnp.maximum(speed, 1e-6))
        pos, vel = _bounce(
            tr[:2] + vel * self.DT, vel, self.TREASURE_RADIUS, 1.0 - self.TREASURE_RADIUS
        )
        return jnp.where(tr[4] > 0, tr[:4], jnp.concatenate([pos, vel]))

    def step(self, state: State, action: jax.Array) -> State:
        """Move the robot and the treasure by one step of dt, then check capture and the goal."""
        ps = state.pipeline_state
        robot, tr = ps["robot"], ps["treasure"]
        key, k_noise = jax.random.split(ps["key"])
        act = jnp.clip(jnp.asarray(action, jnp.float32).reshape(-1)[0], -1.0, 1.0)
        omega = jnp.float32(np.pi) * act
        # Robot: unicycle at constant speed.
        x = jnp.clip(robot[0] + self.SPEED * self.DT * jnp.cos(robot[2]), 0.0, 1.0)
        y = jnp.clip(robot[1] + self.SPEED * self.DT * jnp.sin(robot[2]), 0.0, 1.0)
        th = _wrap(robot[2] + omega * self.DT)
        new_robot = jnp.stack([x, y, th]).astype(jnp.float32)
        # Treasure: noisy motion at most at u, bounced at the walls, unless already collected.
        collected = tr[4] > 0
        moved = self._move_treasure(tr, k_noise)
        # Capture.
        near = jnp.linalg.norm(new_robot[:2] - moved[:2]) <= self.CATCH_RADIUS
        captured = (near & ~collected).astype(jnp.float32)
        now_collected = jnp.maximum(tr[4], captured)
        new_tr = jnp.concatenate([moved, now_collected[None]]).astype(jnp.float32)
        new_ps = {"robot": new_robot, "treasure": new_tr, "key": key}
        metrics = self._metrics(new_ps)
        return state.replace(
            pipeline_state=new_ps,
            obs=self._obs(new_ps),
            reward=self._reward(new_robot, moved, collected, captured),
            done=metrics["goal_reached"],
            metrics={**state.metrics, **metrics},
        )

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """P-law on the bearing to the goal, ``ω = clip(wrap(bearing - θ), ±π)``; ``a = ω / π``."""
        obs = jnp.asarray(obs, jnp.float32)
        x, y, c, s, xg, yg = (obs[..., i] for i in range(6))
        th = jnp.arctan2(s, c)
        err = _wrap(jnp.arctan2(yg - y, xg - x) - th)
        omega = jnp.clip(self.BASELINE_GAIN * err, -np.pi, np.pi)
        return (omega / np.pi)[..., None].astype(jnp.float32)

    # ----------------------------------------------------------------------------- drawing

    def draw(self, ax: Axes, states: dict[str, np.ndarray], t: int) -> None:
        """Draws step `t` of a rollout (``states``: the physical-state dict, arrays stacked over
        time): the workspace, the goal set (green), the treasure (gold while available, a grey
        cross where it was caught), the robot's path so far and the robot along its heading."""
        from matplotlib.patches import Circle

        fix_limits(ax, (-0.1, 1.1), (-0.1, 1.1))
        ax.plot([0, 1, 1, 0, 0], [0, 0, 1, 1, 0], color="0.2", lw=1.5)
        ax.add_patch(Circle(self.GOAL, self.GOAL_RADIUS, color="tab:green", alpha=0.6))
        tx, ty, collected = (float(states["treasure"][t, i]) for i in (0, 1, 4))
        if collected > 0:
            ax.plot([tx], [ty], "x", ms=8, color="0.5")
        else:
            ax.add_patch(Circle((tx, ty), self.TREASURE_RADIUS, color="gold", zorder=4))
        robot = states["robot"]
        path(ax, robot[: t + 1, 0], robot[: t + 1, 1])
        heading_marker(ax, *(float(v) for v in robot[t]), size=0.04)
