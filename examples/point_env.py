"""A 2-D point reaching a random goal: a small Brax `Env` written outside rlx.

State (``State.pipeline_state``, float32 ``(4,)``): the point's position ``p`` and the goal
``g``, both drawn uniformly from ``[-1, 1]^2`` at a reset. Each step moves the point by at most
``max_step`` per axis and keeps it in the box::

    p' = clip(p + max_step * clip(a, -1, 1), -1, 1)
    r  = -||g - p'||                                    (dense: the distance after the step)

Observation ``[p, g - p]`` (4,); action (2,) in ``[-1, 1]``; no termination (episodes end at
the ``episode_length`` time limit). ``metrics["goal_reached"]`` is ``||g - p'|| < goal_radius``:
its value at an episode's last step is the episode's outcome (rlx reports its rate).

Use it as ``--env point_env:PointReach`` with this directory as the working directory.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State


class PointReach(Env):
    """Move a point in the unit box to a random goal; reward minus the distance to it."""

    episode_length: int = 40

    def __init__(self, max_step: float = 0.1, goal_radius: float = 0.1):
        """`max_step`: the largest move per axis and step; `goal_radius`: the goal set's size."""
        self.max_step = float(max_step)
        self.goal_radius = float(goal_radius)

    @property
    def observation_size(self) -> int:
        """[p, g - p]."""
        return 4

    @property
    def action_size(self) -> int:
        """A 2-D displacement command."""
        return 2

    @property
    def backend(self) -> str:
        """Pure JAX, no physics engine."""
        return "jax"

    def _observe(self, q: jax.Array, reward: jax.Array, state: State | None = None) -> State:
        """The State of the physical state q = [p, g] (the distance gives the goal flag)."""
        p, g = q[:2], q[2:]
        reached = (jnp.linalg.norm(g - p) < self.goal_radius).astype(jnp.float32)
        obs = jnp.concatenate([p, g - p])
        if state is None:
            zero = jnp.zeros((), jnp.float32)
            return State(q, obs, zero, zero, {"goal_reached": reached}, {})
        metrics = {**state.metrics, "goal_reached": reached}
        return state.replace(pipeline_state=q, obs=obs, reward=reward, metrics=metrics)

    def reset(self, rng: jax.Array) -> State:
        """Point and goal uniform in [-1, 1]^2."""
        q = jax.random.uniform(rng, (4,), jnp.float32, -1.0, 1.0)
        return self._observe(q, jnp.zeros((), jnp.float32))

    def step(self, state: State, action: jax.Array) -> State:
        """Moves the point by max_step * clip(action) and pays -||g - p'||."""
        q = state.pipeline_state
        move = self.max_step * jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        p = jnp.clip(q[:2] + move, -1.0, 1.0)
        reward = -jnp.linalg.norm(q[2:] - p)
        return self._observe(jnp.concatenate([p, q[2:]]), reward, state)
