"""Policy evaluation: fixed-length episodes of the unwrapped env, vmapped, inside jit."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State


def evaluate(
    env: Env,
    act: Callable[..., jax.Array],
    key: jax.Array,
    num_episodes: int,
    episode_length: int,
    deterministic: bool = True,
) -> dict[str, jax.Array]:
    """Mean episode return (and goal-reaching rate, if the env reports one) over `num_episodes`.

    Each episode runs `episode_length` steps; rewards after a termination are masked out.
    ``eval/goal_reached`` is the share of episodes whose last live step is in the goal set.
    """
    reset_keys, act_key = jax.random.split(key)
    state = jax.vmap(env.reset)(jax.random.split(reset_keys, num_episodes))
    has_goal = "goal_reached" in state.metrics

    def _step(carry: tuple[State, jax.Array, jax.Array, jax.Array], step_key: jax.Array):
        env_state, ret, alive, goal = carry
        keys = jax.random.split(step_key, num_episodes)
        action = jax.vmap(lambda o, k: act(o, k, deterministic))(env_state.obs, keys)
        nxt = jax.vmap(env.step)(env_state, action)
        ret = ret + alive * nxt.reward
        if has_goal:
            goal = jnp.where(alive > 0, nxt.metrics["goal_reached"], goal)
        alive = alive * (1.0 - nxt.done)
        return (nxt, ret, alive, goal), None

    zeros = jnp.zeros((num_episodes,), jnp.float32)
    init = (state, zeros, jnp.ones_like(zeros), zeros)
    (_, ret, _, goal), _ = jax.lax.scan(_step, init, jax.random.split(act_key, episode_length))
    out = {"eval/return": ret.mean(), "eval/return_std": ret.std()}
    if has_goal:
        out["eval/goal_reached"] = goal.mean()
    return out
