"""Bimanual squeeze-lift-place on MuJoCo MJX: two 3-DoF hands lift a free box off a table by
squeezing it between them and set it down on a target. HABC's contact-rich task.

The model is written here (`model_xml`, no asset files): a table (the floor plane), a free
box of half size w and mass m, and two hands, each a flat pad on three slide joints (x, y, z)
with position actuators (stiffness ``KP``, joint damping) and gravity compensation. The box
rises only by friction at the two pads: neither hand can lift it alone.

Action (shape ``(6,)``, in [-1, 1]): velocities of the two hands' actuator targets, the
target moving by ``SPEED * a`` per control step and kept within ``LEAD`` of the hand (so a hand
pressed against the box squeezes with at most ``KP * LEAD``). Control step 0.02 s (4 physics
steps of 5 ms).

Observation (22): both hands' positions and actuator targets (12), the box's position (3),
velocity (3) and the z component of its up axis (1, 1 when upright), the target's x, y (2)
and whether the box has been lifted (1).

Success (sparse, ``done = 1``, reward 1): the box has been lifted by at least ``LIFT`` and
rests on the table, upright, within ``TOLERANCE`` of the target. Danger (``danger(state)``,
for simulated interventions): the box in the air with a pad off its face or slipping down
between the pads, or tilted by more than 25 degrees. Recovered (``recovered(state)``, when an
expert that took over may hand back): not in danger, and the box upright and either held by
both pads at its faces or resting on the table, still. The SFT policies fail mostly by carrying
and placing, which these do not see; ``placement_danger=True`` adds a tube around the expert's
path for those: a lifted box moving away from the target, or set down off it.

Levels (box half size, mass, friction, carry distance) stand in for HABC's three tasks::

    level 1: w = 0.05, m = 0.2 kg, mu = 1.0, distance 0.20
    level 2: w = 0.04, m = 0.4 kg, mu = 0.8, distance 0.30
    level 3: w = 0.035, m = 0.6 kg, mu = 0.6, distance 0.40

Expert (``baseline_policy``): approach the box's side faces at its height, squeeze, lift to
``CARRY_Z``, carry over the target, lower and hold until success. It succeeds on 64 of 64
initial states of every level, in about 70 (level 1) to 100 (level 3) steps.

Speed on a 2-core AMD EPYC CPU (jax 0.10.2, MuJoCo 3.17): about 1,500 control steps/s (6,000
physics steps/s) for 64 envs side by side under the expert; HABC trains at about 3 episodes/s
there, so experiments on this task are for a GPU.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax.envs.base import Env, State
from mujoco import mjx

from rlx.errors import RlxError

LEVELS: dict[int, dict[str, float]] = {
    1: {"half_size": 0.05, "mass": 0.2, "friction": 1.0, "distance": 0.20},
    2: {"half_size": 0.04, "mass": 0.4, "friction": 0.8, "distance": 0.30},
    3: {"half_size": 0.035, "mass": 0.6, "friction": 0.6, "distance": 0.40},
}
KP = 1000.0
SPEED = 0.02
LEAD = 0.03
PAD = 0.01  # pad half thickness (x)
N_FRAMES = 4
CARRY_Z = 0.2
LIFT = 0.05
TOLERANCE = 0.04
SQUEEZE = 0.02  # how far inside the face the expert aims its targets
CARRY = 0.015  # the expert's largest box displacement per control step
AWAY_SPEED = 0.1  # m/s: a lifted box moving away from the target this fast is off the path


def model_xml(half_size: float, mass: float, friction: float) -> str:
    """The MJCF of one level."""
    w = half_size

    def hand(name: str, x: float) -> str:
        return f"""
    <body name="{name}" pos="0 0 0" gravcomp="1">
      <joint name="{name}_x" type="slide" axis="1 0 0" range="-0.6 0.6" damping="28"/>
      <joint name="{name}_y" type="slide" axis="0 1 0" range="-0.6 0.6" damping="28"/>
      <joint name="{name}_z" type="slide" axis="0 0 1" range="0 0.5" damping="28"/>
      <geom name="{name}_pad" type="box" size="{PAD} 0.03 0.03" mass="0.2"
            friction="{friction} 0.01 0.001" rgba="0.2 0.4 0.8 1"/>
    </body>"""

    actuators = "\n".join(
        f'    <position joint="{h}_{a}" kp="{KP}" ctrlrange="{lo} {hi}"/>'
        for h in ("left", "right")
        for a, (lo, hi) in zip("xyz", ((-0.6, 0.6), (-0.6, 0.6), (0.0, 0.5)), strict=True)
    )
    return f"""<mujoco model="squeeze_lift_mjx">
  <option timestep="0.005" iterations="20" ls_iterations="10" cone="elliptic" impratio="10">
    <flag eulerdamp="disable"/>
  </option>
  <worldbody>
    <geom name="table" type="plane" size="2 2 0.1" friction="{friction} 0.01 0.001"/>
    <body name="box" pos="0 0 {w}">
      <freejoint name="box"/>
      <geom name="box" type="box" size="{w} {w} {w}" mass="{mass}"
            friction="{friction} 0.01 0.001" rgba="0.8 0.5 0.2 1"/>
    </body>{hand("left", -0.2)}{hand("right", 0.2)}
  </worldbody>
  <actuator>
{actuators}
  </actuator>
</mujoco>"""


class BimanualSqueezeLift(Env):
    """Two slide-joint hands squeeze-lift-place a free box on MJX (module docstring)."""

    episode_length: int = 150
    episode_metrics: tuple[str, ...] = ("goal_reached", "lifted")
    metric_labels: ClassVar[dict[str, str]] = {"lifted": "lift rate"}
    rate_metrics: tuple[str, ...] = ("lifted",)
    ends_at_success = True
    """``done = 1`` on the success step: an episode that succeeds ends there, so its last valid
    step is its success step (HABC's credit relies on it)."""

    def __init__(self, level: int = 1, placement_danger: bool = False):
        """Pick the difficulty ``level`` (1, 2 or 3: module docstring); ``placement_danger``
        adds the placement tube to the danger predicate (`danger`)."""
        if isinstance(level, bool) or level not in LEVELS:
            raise RlxError(f"level must be one of 1, 2, 3; got {level!r}.")
        if not isinstance(placement_danger, bool):
            raise RlxError(f"placement_danger must be true or false, got {placement_danger!r}.")
        self.level, self.placement_danger = level, placement_danger
        spec = LEVELS[level]
        self.w, self.distance = spec["half_size"], spec["distance"]
        self.mj_model = mujoco.MjModel.from_xml_string(
            model_xml(spec["half_size"], spec["mass"], spec["friction"])
        )
        self.mjx_model = mjx.put_model(self.mj_model)
        self.dt = N_FRAMES * float(self.mj_model.opt.timestep)

    @property
    def observation_size(self) -> int:
        """Hands and targets 12, box position, velocity, uprightness 7, target 2, lifted 1."""
        return 22

    @property
    def action_size(self) -> int:
        """Two hands' target velocities: 6."""
        return 6

    @property
    def backend(self) -> str:
        """Physics backend name."""
        return "mjx"

    # --- physics ----------------------------------------------------------------------------

    @staticmethod
    def _hands(data: mjx.Data) -> jax.Array:
        return data.qpos[7:13]

    def _box(self, data: mjx.Data) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Box position, linear velocity and the z component of its up axis."""
        x, y = data.qpos[4], data.qpos[5]  # the quaternion (w, x, y, z) is qpos[3:7]
        return data.qpos[:3], data.qvel[:3], 1.0 - 2.0 * (x * x + y * y)

    def _obs(self, data: mjx.Data, target: jax.Array, lifted: jax.Array) -> jax.Array:
        pos, vel, up_z = self._box(data)
        return jnp.concatenate(
            [self._hands(data), data.ctrl, pos, vel, up_z[None], target, lifted[None]]
        ).astype(jnp.float32)

    def reset(self, rng: jax.Array) -> State:
        """Box on the table at a random spot, the target ``distance`` away in a random
        direction, hands apart beside it above the table."""
        k_box, k_dir, k_hand = jax.random.split(rng, 3)
        box_xy = jax.random.uniform(k_box, (2,), jnp.float32, -0.1, 0.1)
        angle = jax.random.uniform(k_dir, (), jnp.float32, 0.0, 2 * jnp.pi)
        target = box_xy + self.distance * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        jitter = jax.random.uniform(k_hand, (6,), jnp.float32, -0.03, 0.03)
        hands = jnp.concatenate([box_xy[:1] - 0.2, box_xy[1:], jnp.array([0.15]),
                                 box_xy[:1] + 0.2, box_xy[1:], jnp.array([0.15])]) + jitter  # fmt: skip
        qpos = jnp.concatenate([box_xy, jnp.array([self.w, 1.0, 0.0, 0.0, 0.0]), hands])
        data = mjx.make_data(self.mjx_model).replace(qpos=qpos, ctrl=hands)
        data = mjx.forward(self.mjx_model, data)
        lifted = jnp.zeros((), jnp.float32)
        zero = jnp.zeros((), jnp.float32)
        metrics = {"goal_reached": zero, "lifted": zero}
        info = {"target": target, "lifted": lifted}
        return State(data, self._obs(data, target, lifted), zero, zero, metrics, info)

    def step(self, state: State, action: jax.Array) -> State:
        """Move the actuator targets, run ``N_FRAMES`` physics steps, score the outcome."""
        data = state.pipeline_state
        act = jnp.clip(jnp.asarray(action, jnp.float32).reshape(6), -1.0, 1.0)
        hands = self._hands(data)
        ctrl = jnp.clip(data.ctrl + SPEED * act, hands - LEAD, hands + LEAD)
        data = data.replace(ctrl=ctrl)
        data = jax.lax.fori_loop(0, N_FRAMES, lambda _, d: mjx.step(self.mjx_model, d), data)
        pos, vel, up_z = self._box(data)
        target = state.info["target"]
        lifted = jnp.maximum(state.info["lifted"], (pos[2] >= self.w + LIFT).astype(jnp.float32))
        resting = (pos[2] <= self.w + 0.005) & (jnp.linalg.norm(vel) < 0.05) & (up_z > 0.95)
        near = jnp.linalg.norm(pos[:2] - target) <= TOLERANCE
        success = (lifted > 0) & resting & near
        done = success.astype(jnp.float32)
        metrics = {"goal_reached": done, "lifted": lifted}
        info = {"target": target, "lifted": lifted}
        return state.replace(pipeline_state=data, obs=self._obs(data, target, lifted),
                             reward=done, done=done, metrics={**state.metrics, **metrics},
                             info={**state.info, **info})  # fmt: skip

    def danger(self, state: State) -> jax.Array:
        """The box in the air with a pad more than 1 cm off its face or sagging by more than
        half its size below the pads (slipping out), or tilted by more than 25 degrees (works
        on batched states). With ``placement_danger`` also the placement tube: a lifted box
        in the air moving away from the target faster than ``AWAY_SPEED``, or set down more
        than ``TOLERANCE`` from it."""
        obs = state.obs
        hands, box = obs[..., 0:6], obs[..., 12:15]
        reach = self.w + PAD
        open_l = (box[..., 0] - reach) - hands[..., 0] > 0.01
        open_r = hands[..., 3] - (box[..., 0] + reach) > 0.01
        sag = 0.5 * (hands[..., 2] + hands[..., 5]) - box[..., 2] > 0.5 * self.w
        airborne = box[..., 2] > self.w + 0.01
        tilted = obs[..., 18] < np.cos(np.deg2rad(25.0))
        danger = (airborne & (open_l | open_r | sag)) | tilted
        if not self.placement_danger:
            return danger
        lifted = obs[..., 21] > 0
        to_target = obs[..., 19:21] - box[..., :2]
        dist = jnp.linalg.norm(to_target, axis=-1)
        closing = jnp.sum(obs[..., 15:17] * to_target, axis=-1) / jnp.maximum(dist, 1e-6)
        astray = lifted & airborne & (closing < -AWAY_SPEED)
        misplaced = lifted & ~airborne & (dist > TOLERANCE)
        return danger | astray | misplaced

    def recovered(self, state: State) -> jax.Array:
        """Nothing is being lost, consistent with `danger` (works on batched states): not in
        danger, and the box either held by both hands (each pad within 1 cm of its face, level
        with the box and over it in y) and upright, or resting on the table (within 1 cm of it,
        slower than 5 cm/s, upright)."""
        obs = state.obs
        hands, box = obs[..., 0:6], obs[..., 12:15]
        speed = jnp.linalg.norm(obs[..., 15:18], axis=-1)
        reach = self.w + PAD
        at_l = jnp.abs(hands[..., 0] - (box[..., 0] - reach)) <= 0.01
        at_r = jnp.abs(hands[..., 3] - (box[..., 0] + reach)) <= 0.01
        over = [(jnp.abs(hands[..., i + 1] - box[..., 1]) < self.w)
                & (jnp.abs(hands[..., i + 2] - box[..., 2]) < self.w) for i in (0, 3)]  # fmt: skip
        upright = obs[..., 18] >= np.cos(np.deg2rad(25.0))
        held = at_l & at_r & over[0] & over[1]
        resting = (box[..., 2] <= self.w + 0.01) & (speed < 0.05)
        return (held | resting) & upright & ~self.danger(state)

    # --- expert -----------------------------------------------------------------------------

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """The scripted expert (module docstring); works on batched observations."""
        obs = jnp.asarray(obs, jnp.float32)
        hands, ctrl = obs[..., 0:6], obs[..., 6:12]
        box, target, lifted = obs[..., 12:15], obs[..., 19:21], obs[..., 21] > 0
        w = self.w
        bx, by, bz = box[..., 0], box[..., 1], box[..., 2]
        reach = w + PAD  # pad centre at the face
        lx, ly, lz, rx, ry, rz = (hands[..., i] for i in range(6))
        level = (jnp.abs(lz - bz) < 0.01) & (jnp.abs(rz - bz) < 0.01)
        aligned = (jnp.abs(ly - by) < 0.01) & (jnp.abs(ry - by) < 0.01)
        touching = (jnp.abs(lx - (bx - reach)) < 0.006) & (jnp.abs(rx - (bx + reach)) < 0.006)
        grasped = level & aligned & touching
        held = grasped | (lifted & touching)
        # Where the box should go: up, across at carry height, then down onto the target.
        over = jnp.linalg.norm(box[..., :2] - target, axis=-1) <= 0.01
        high = bz >= CARRY_Z - 0.01
        goal_xy = jnp.where((high | over)[..., None], target, box[..., :2])
        goal_z = jnp.where(over & lifted, w, CARRY_Z)
        # The box is moved CARRY per step at most, so both hands keep their squeeze offsets.
        dx, dy = (jnp.clip(g, -CARRY, CARRY) for g in (goal_xy[..., 0] - bx, goal_xy[..., 1] - by))
        dz = jnp.clip(goal_z - bz, -CARRY, CARRY)
        hz = 0.5 * (lz + rz) + dz  # the hands lead in z (the box may sag in the grip)
        squeeze = jnp.stack([bx - reach + SQUEEZE + dx, by + dy, hz,
                             bx + reach - SQUEEZE + dx, by + dy, hz], -1)  # fmt: skip
        # Not held: beside the faces at the box's height, then in.
        outside = jnp.stack([bx - reach - 0.03, by, bz, bx + reach + 0.03, by, bz], -1)
        inward = jnp.stack([bx - reach + SQUEEZE, by, bz, bx + reach - SQUEEZE, by, bz], -1)
        approach = jnp.where((level & aligned)[..., None], inward, outside)
        aim = jnp.where(held[..., None], squeeze, approach)
        return jnp.clip((aim - ctrl) / SPEED, -1.0, 1.0).astype(jnp.float32)
