"""Squeeze-lift-place: two point hands lift a box by squeezing it and set it down on a target,
pure JAX. The fast stand-in for HABC's contact-rich bimanual task (unit and learning tests).

A planar world (x to the right, z up) with a table at z = 0 and a square box of half size w
resting on it. Neither hand can lift the box alone: it rises only while both squeeze it hard
enough for friction to carry its weight.

Physical state (``State.pipeline_state``, float32 arrays)::

    hands   (4,)  [x_l, z_l, x_r, z_r]     the left and right hand
    box     (2,)  [b_x, b_z]                the box's centre (b_z = w: on the table)
    target  ()    t_x                       where the box is to be set down
    flags   (2,)  [gripped, lifted]         held last step; has been lifted by >= w

Action (shape ``(4,)``, in [-1, 1], clipped): hand velocities, each hand moving by
``speed * a`` (``speed = 0.04``) per step, inside [-1, 1] x [0, 1].

Contact (a hand touches a side face while it is within the box's height, |z - b_z| <= w)::

    p_l = clip(x_l - (b_x - w), 0, p_max),      p_r = clip((b_x + w) - x_r, 0, p_max),

the hands' penetrations into their own faces (the left hand into the left face), capped at
``p_max`` (a hand cannot push deeper). A hand only presses into the face on the side it comes
from: one that was on its own side of the box's centre at the previous step is kept at most
``p_max`` into its own face, one that was beyond the centre (a left hand right of b_x) stays
outside the far face (x_l >= b_x + w), so a hand never passes through the box, and a hand
beyond the centre never squeezes (p = 0). The squeeze holds the box when both penetrations reach
``p_grip`` (the stiffness times the smaller penetration, times twice the friction, carries the
weight). A held box moves with the mean of the two hands' displacements; a box not held falls by
``fall_speed`` per step until it rests on the table.

Success (sparse outcome, ``done = 1``): the box has been lifted (``lifted``) and rests on the
table within ``tolerance`` of ``t_x`` (``ends_at_success``: the episode ends on its success
step). Reward: 1 on the success step, else 0. Time-out (``episode_length = 150``) is left to
the registry's wrapper. Metrics: ``goal_reached`` (success), ``gripped``, ``dropped`` (1 on a
step where a lifted box stops being held in the air), all episode metrics.

Danger predicate (``danger(state)``, for simulated interventions): the box is being lost: in
the air, not held, and let go, a hand more than ``release`` (default 0.06) from gripping its face
(outside it, past ``p_max`` into it, or above or below it); with ``margin`` > 0 (default 0) also a
box held in the air by a squeeze within ``margin`` of slipping. A box that slips and falls
between hands that follow it is not in danger: the expert catches it or grasps it again on the
table. Calibrated on the scripted expert with HABC's exploration noise (actions plus 0.1 N(0, 1),
clipped; 256 episodes of 150 steps per level, up to success), which succeeds in 100/100/87% of
episodes on levels 1/2/3 and trips this predicate in 0/0.4/0.8% of them. The earlier rule (any
free box in the air, or a squeeze within 0.002 of p_grip) tripped in 41/85/100%, and any free box
in the air alone in 23/57/98%: the noisy expert's box slips and is re-caught or re-grasped
(about 5 times per successful level-3 episode).

Recovered (``recovered(state)``, when an expert that took over may hand back): not in danger,
and the box held in a squeeze or resting on the table.

Difficulty (``level`` 1-3) stands in for HABC's three tasks: box half size w, the squeeze
window [p_grip, p_max] a hand must hit, and the carry distance |t_x - b_x|::

    level 1: w = 0.10, p_grip = 0.010, p_max = 0.030, distance 0.3
    level 2: w = 0.08, p_grip = 0.015, p_max = 0.028, distance 0.5
    level 3: w = 0.06, p_grip = 0.020, p_max = 0.026, distance 0.7

Initial state: box at b_x ~ U(-0.3, 0.3) on the table, target at b_x +- distance (side drawn,
kept in [-0.8, 0.8]), hands at (b_x -+ U(0.3, 0.4), U(0.3, 0.5)).

Expert (``baseline_policy``): a scripted controller from the observation, aiming each hand at
a point beside the box and stepping towards it (straight to the squeeze points, squeezing to the
middle of the window, when neither hand is over the box's top, else out past its faces first;
lift to ``carry_height``, carry over the target, lower). A box that slips out of the squeeze is
caught where it falls, the same motion as the first grasp: an earlier expert backed away to the
box's height first, and behaviour cloning of its rescues drove HABC's success down.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State

from rlx.errors import RlxError

LEVELS: dict[int, dict[str, float]] = {
    1: {"half_size": 0.10, "p_grip": 0.010, "p_max": 0.030, "distance": 0.3},
    2: {"half_size": 0.08, "p_grip": 0.015, "p_max": 0.028, "distance": 0.5},
    3: {"half_size": 0.06, "p_grip": 0.020, "p_max": 0.026, "distance": 0.7},
}


class SqueezeLift(Env):
    """Two point hands squeeze a box, lift it, carry it and set it down on a target."""

    episode_length: int = 150
    episode_metrics: tuple[str, ...] = ("goal_reached", "gripped", "dropped")
    metric_labels: ClassVar[dict[str, str]] = {"gripped": "grip rate", "dropped": "drops"}

    speed = 0.04
    fall_speed = 0.05
    tolerance = 0.05
    carry_height = 0.3
    margin = 0.0
    release = 0.06
    ends_at_success = True
    """``done = 1`` on the success step: an episode that succeeds ends there, so its last valid
    step is its success step (HABC's credit relies on it)."""

    def __init__(self, level: int = 1, margin: float = 0.0, release: float = 0.06):
        """Pick the difficulty ``level`` (1, 2 or 3: module docstring) and the danger
        predicate's knobs (`danger`): ``release``, how far (in x or z) a hand must be off its face
        for a free box in the air to count as let go (0.06: 1.5 steps of a hand at full speed),
        and ``margin``, the squeeze margin under which a held box in the air also counts (0: off;
        0.002 was the earlier default, which fired on the exploration noise)."""
        if isinstance(level, bool) or level not in LEVELS:
            raise RlxError(f"level must be one of 1, 2, 3; got {level!r}.")
        for name, value in (("margin", margin), ("release", release)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise RlxError(f"{name} must be a number >= 0, got {value!r}.")
        self.margin, self.release = float(margin), float(release)
        self.level = level
        spec = LEVELS[level]
        self.w, self.p_grip, self.p_max = spec["half_size"], spec["p_grip"], spec["p_max"]
        self.distance = spec["distance"]

    @property
    def observation_size(self) -> int:
        """[x_l, z_l, x_r, z_r, b_x, b_z, t_x, gripped, lifted]: 9."""
        return 9

    @property
    def action_size(self) -> int:
        """Two hands' planar velocities: 4."""
        return 4

    @property
    def backend(self) -> str:
        """Physics backend name (pure JAX)."""
        return "jax"

    def _obs(self, ps: dict[str, jax.Array]) -> jax.Array:
        return jnp.concatenate([ps["hands"], ps["box"], ps["target"][None], ps["flags"]])

    def _level(self, hands: jax.Array, box: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Whether the left and the right hand are within the box's height (|z - b_z| <= w)."""
        return jnp.abs(hands[1] - box[1]) <= self.w, jnp.abs(hands[3] - box[1]) <= self.w

    def penetrations(self, hands: jax.Array, box: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(p_l, p_r): each hand's depth into its own side face; 0 when it is not level with the
        box or is beyond the box's centre (a left hand right of b_x does not squeeze)."""
        level_l, level_r = self._level(hands, box)
        own_l, own_r = hands[0] < box[0], hands[2] > box[0]
        p_l = jnp.where(level_l & own_l, jnp.clip(hands[0] - (box[0] - self.w), 0.0, None), 0.0)
        p_r = jnp.where(level_r & own_r, jnp.clip(box[0] + self.w - hands[2], 0.0, None), 0.0)
        return p_l, p_r

    def _limit_hands(
        self, hands: jax.Array, box: jax.Array, old_hands: jax.Array, old_box: jax.Array
    ) -> jax.Array:
        """Hands kept in the workspace and out of the box (module docstring, Contact): a hand
        level with the box is held by the face on the side of the centre it was on at the
        previous step, at most p_max deep in its own face, or outside the far face."""
        level_l, level_r = self._level(hands, box)
        left, right = box[0] - self.w, box[0] + self.w
        own_l, own_r = old_hands[0] <= old_box[0], old_hands[2] >= old_box[0]
        x_l = jnp.where(
            own_l, jnp.minimum(hands[0], left + self.p_max), jnp.maximum(hands[0], right)
        )
        x_r = jnp.where(
            own_r, jnp.maximum(hands[2], right - self.p_max), jnp.minimum(hands[2], left)
        )
        x_l = jnp.where(level_l, x_l, hands[0])
        x_r = jnp.where(level_r, x_r, hands[2])
        hands = jnp.stack([x_l, hands[1], x_r, hands[3]])
        return jnp.clip(hands, jnp.array([-1.0, 0.0, -1.0, 0.0]), 1.0)

    def holds(self, hands: jax.Array, box: jax.Array) -> jax.Array:
        """True when both hands squeeze by at least p_grip."""
        p_l, p_r = self.penetrations(hands, box)
        return jnp.minimum(p_l, p_r) >= self.p_grip

    def reset(self, rng: jax.Array) -> State:
        """Box on the table, target beside it, hands apart above the table (module docstring)."""
        k_box, k_side, k_hand = jax.random.split(rng, 3)
        bx = jax.random.uniform(k_box, (), jnp.float32, -0.3, 0.3)
        side = jnp.where(jax.random.bernoulli(k_side), 1.0, -1.0)
        tx = bx + side * self.distance
        tx = jnp.where(jnp.abs(tx) > 0.8, bx - side * self.distance, tx)
        gap = jax.random.uniform(k_hand, (4,), jnp.float32, 0.0, 1.0)
        hands = jnp.stack([bx - 0.3 - 0.1 * gap[0], 0.3 + 0.2 * gap[1],
                           bx + 0.3 + 0.1 * gap[2], 0.3 + 0.2 * gap[3]])  # fmt: skip
        ps = {
            "hands": hands.astype(jnp.float32),
            "box": jnp.stack([bx, jnp.float32(self.w)]),
            "target": tx.astype(jnp.float32),
            "flags": jnp.zeros((2,), jnp.float32),
        }
        zero = jnp.zeros((), jnp.float32)
        metrics = {"goal_reached": zero, "gripped": zero, "dropped": zero}
        return State(ps, self._obs(ps), zero, zero, metrics, {})

    def step(self, state: State, action: jax.Array) -> State:
        """A box held at the start of the step moves with the mean of the hands' displacement,
        a free one falls; the hands are then limited by the faces of the box where it is."""
        ps = state.pipeline_state
        old_hands, box = ps["hands"], ps["box"]
        act = jnp.clip(jnp.asarray(action, jnp.float32).reshape(4), -1.0, 1.0)
        hands = jnp.clip(old_hands + self.speed * act, jnp.array([-1.0, 0.0, -1.0, 0.0]), 1.0)
        shift = 0.5 * (hands - old_hands)
        carried = box + jnp.stack([shift[0] + shift[2], shift[1] + shift[3]])
        fallen = box.at[1].add(-self.fall_speed)
        box = jnp.where(self.holds(old_hands, box), carried, fallen)
        box = box.at[1].set(jnp.maximum(box[1], self.w))
        hands = self._limit_hands(hands, box, old_hands, ps["box"])
        held = self.holds(hands, box)
        on_table = box[1] <= self.w + 1e-4
        lifted = (ps["flags"][1] > 0) | (box[1] >= 2.0 * self.w)
        success = lifted & on_table & (jnp.abs(box[0] - ps["target"]) <= self.tolerance)
        dropped = (ps["flags"][0] > 0) & ~held & ~on_table
        flags = jnp.stack([held, lifted]).astype(jnp.float32)
        new_ps = {"hands": hands, "box": box, "target": ps["target"], "flags": flags}
        metrics = {
            "goal_reached": success.astype(jnp.float32),
            "gripped": held.astype(jnp.float32),
            "dropped": dropped.astype(jnp.float32),
        }
        done = success.astype(jnp.float32)
        return state.replace(pipeline_state=new_ps, obs=self._obs(new_ps), reward=done,
                             done=done, metrics={**state.metrics, **metrics})  # fmt: skip

    def _off_face(self, depth: jax.Array, dz: jax.Array) -> jax.Array:
        """How far a hand is from gripping its face, given its depth into the face (negative:
        outside) and its height off the box's centre: the larger of its distance outside the
        face, its depth past ``p_max`` (on the far side, say) and its height past the face."""
        return jnp.maximum(jnp.maximum(-depth, depth - self.p_max), jnp.abs(dz) - self.w)

    def danger(self, state: State) -> jax.Array:
        """The box being lost (module docstring, Danger): in the air, not held, and let go by a
        hand more than ``release`` off its face; or, with ``margin`` > 0, held in the air with a
        squeeze within ``margin`` of slipping (works on batched states)."""
        obs = state.obs
        hands, box, gripped = obs[..., :4], obs[..., 4:6], obs[..., 7] > 0
        p_l, p_r = jax.vmap(self.penetrations)(hands.reshape(-1, 4), box.reshape(-1, 2))
        weak = (jnp.minimum(p_l, p_r) < self.p_grip + self.margin).reshape(gripped.shape)
        off_l = self._off_face(hands[..., 0] - (box[..., 0] - self.w), hands[..., 1] - box[..., 1])
        off_r = self._off_face(box[..., 0] + self.w - hands[..., 2], hands[..., 3] - box[..., 1])
        let_go = jnp.maximum(off_l, off_r) > self.release
        airborne = box[..., 1] > self.w + 1e-4
        return airborne & jnp.where(gripped, (self.margin > 0) & weak, let_go)

    def recovered(self, state: State) -> jax.Array:
        """Nothing is being lost: the box held in a squeeze and not in `danger`, or resting on
        the table (works on batched states; an expert that took over may hand back)."""
        gripped, on_table = state.obs[..., 7] > 0, state.obs[..., 5] <= self.w + 1e-4
        return (gripped | on_table) & ~self.danger(state)

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """The scripted expert (module docstring); works on batched observations."""
        obs = jnp.asarray(obs, jnp.float32)
        hands, bx, bz, tx = obs[..., :4], obs[..., 4], obs[..., 5], obs[..., 6]
        gripped, lifted = obs[..., 7] > 0, obs[..., 8] > 0
        w, squeeze = self.w, 0.5 * (self.p_grip + self.p_max)
        # Beside: neither hand over the box's top, so both can go straight to the squeeze points
        # (also when the box slips and falls between them: a catch, not a fresh approach).
        beside = (hands[..., 0] < bx - w + self.p_max) & (hands[..., 2] > bx + w - self.p_max)
        # Where the box should go next: up, across at carry height, then down on the target.
        over = jnp.abs(bx - tx) <= 0.5 * self.tolerance
        high = bz >= self.carry_height - 0.01
        goal_x = jnp.where(high | over, tx, bx)
        goal_z = jnp.where(over & lifted, w, self.carry_height)
        # Held: both hands carry the box by its offset to the goal, squeezed mid-window.
        grip_x = jnp.stack([bx - w + squeeze, bx + w - squeeze], -1) + (goal_x - bx)[..., None]
        rise = (goal_z - bz)[..., None]
        carry = jnp.stack([grip_x[..., 0], hands[..., 1] + rise[..., 0],
                           grip_x[..., 1], hands[..., 3] + rise[..., 0]], -1)  # fmt: skip
        # Free: straight to the squeeze points when beside, else first out past the faces.
        squeeze_at = jnp.stack([bx - w + squeeze, bz, bx + w - squeeze, bz], -1)
        outside = jnp.stack([bx - w - 0.04, bz, bx + w + 0.04, bz], -1)
        free = jnp.where(beside[..., None], squeeze_at, outside)
        target = jnp.where(gripped[..., None], carry, free)
        return jnp.clip((target - hands) / self.speed, -1.0, 1.0).astype(jnp.float32)
