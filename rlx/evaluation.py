"""Policy evaluation: fixed-length episodes of the unwrapped env, vmapped, inside jit."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State

from rlx.envs import outcome_metrics


def evaluate(
    env: Env,
    act: Callable[..., jax.Array],
    key: jax.Array,
    num_episodes: int,
    episode_length: int,
    deterministic: bool = True,
) -> dict[str, jax.Array]:
    """Mean episode return and mean episode outcomes over `num_episodes`.

    Each episode runs `episode_length` steps; rewards after a termination are masked out.
    For every outcome metric of the env (`rlx.envs.outcome_metrics`: ``goal_reached`` and
    task-specific ones), ``eval/<name>`` is its mean over episodes of the value at the
    episode's last live step (so ``eval/goal_reached`` is the share of episodes ending in the
    goal set).
    """
    reset_keys, act_key = jax.random.split(key)
    state = jax.vmap(env.reset)(jax.random.split(reset_keys, num_episodes))
    names = outcome_metrics(env)

    def _step(carry: tuple[State, jax.Array, jax.Array, dict], step_key: jax.Array):
        env_state, ret, alive, last = carry
        keys = jax.random.split(step_key, num_episodes)
        action = jax.vmap(lambda o, k: act(o, k, deterministic))(env_state.obs, keys)
        nxt = jax.vmap(env.step)(env_state, action)
        ret = ret + alive * nxt.reward
        last = {m: jnp.where(alive > 0, nxt.metrics[m], last[m]) for m in names}
        alive = alive * (1.0 - nxt.done)
        return (nxt, ret, alive, last), None

    zeros = jnp.zeros((num_episodes,), jnp.float32)
    init = (state, zeros, jnp.ones_like(zeros), {m: zeros for m in names})
    (_, ret, _, last), _ = jax.lax.scan(_step, init, jax.random.split(act_key, episode_length))
    out = {"eval/return": ret.mean(), "eval/return_std": ret.std()}
    out.update({f"eval/{m}": v.mean() for m, v in last.items()})
    return out
