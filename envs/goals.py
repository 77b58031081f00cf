"""Goal-conditioned environments: how an observation splits into a state part and a goal part.

A goal-conditioned env (an optional capability, see `rlx.envs`) exposes ``goal_layout``: its
observation is ``concat(state, goal)`` with ``state`` of ``state_size`` and ``goal`` of
``goal_size``, and the goal that a state *reaches* is ``state[goal_indices]``. Offline datasets of
such an env store states only (OGBench's layout); goal-conditioned learners relabel them with
goals drawn from the data and build the observation an acting policy sees with `observe`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from brax.envs.base import Env

from rlx.errors import RlxError


@dataclasses.dataclass(frozen=True)
class GoalLayout:
    """Observation layout of a goal-conditioned env: ``obs = concat(state, goal)``."""

    state_size: int
    goal_size: int
    goal_indices: tuple[int, ...]
    """The goal a state reaches: ``state[goal_indices]`` (length goal_size)."""

    def split(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(state, goal) parts of observations ``[..., state_size + goal_size]``."""
        return obs[..., : self.state_size], obs[..., self.state_size :]

    def goal_of(self, state: jax.Array) -> jax.Array:
        """The goal reached at `state`: ``state[..., goal_indices]``."""
        return state[..., jnp.asarray(self.goal_indices)]

    def observe(self, state: jax.Array, goal: jax.Array) -> jax.Array:
        """The observation of `state` under `goal`: ``concat(state, goal)``."""
        return jnp.concatenate([state, goal], axis=-1)


def goal_layout(env: Env) -> GoalLayout | None:
    """The env's `GoalLayout`, or None if it is not goal-conditioned."""
    layout = getattr(env, "goal_layout", None)
    return layout if isinstance(layout, GoalLayout) else None


def require_goal_layout(env: Env, what: str) -> GoalLayout:
    """The env's `GoalLayout`; raises RlxError naming `what` (the algorithm) and the goal-
    conditioned environments otherwise."""
    layout = goal_layout(env)
    if layout is not None:
        return layout
    from rlx import envs

    with_goals = [n for n in envs.names() if not envs.is_brax(n) and n.startswith("pointmaze")]
    with_goals = [n for n in with_goals if goal_layout(envs.make(n)) is not None]
    raise RlxError(
        f"{what} needs a goal-conditioned environment (goal_layout); {type(env).__name__} is "
        f"not one. Goal-conditioned environments: {', '.join(with_goals)}."
    )
