"""Training wrappers: Brax's episode-length and vmap wrappers plus an auto-reset that keeps the
final observation, so learners can bootstrap on time-outs.

After `wrap_for_training`, every step's `State.info` holds:

- ``truncation``: 1.0 where the episode hit its time limit without terminating (Brax's
  ``EpisodeWrapper``); ``termination = done * (1 - truncation)``;
- ``final_obs``: the observation reached by this step *before* any reset (equal to ``obs`` where
  the episode goes on), i.e. the ``s'`` to bootstrap from;
- ``episode_metrics`` / ``episode_done``: Brax's running episode sums (``sum_reward``,
  ``length``), complete where ``episode_done`` is 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State, Wrapper
from brax.envs.wrappers.training import EpisodeWrapper, VmapWrapper


def _where_done(done: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Per-environment select: `x` where `done` (shape (n,)) else `y`, broadcast over x's tail."""
    return jnp.where(done.reshape(done.shape + (1,) * (x.ndim - done.ndim)) > 0, x, y)


class AutoResetWrapper(Wrapper):
    """Resets finished episodes of a batched env, recording ``info['final_obs']`` first.

    With ``resample=True`` each reset draws a fresh initial state from a per-env key carried in
    ``info['reset_key']`` (cheap for pure-JAX envs); with ``resample=False`` an env restarts from
    its own first initial state, as Brax's training wrapper does (cheap for physics envs whose
    reset is costly).
    """

    def __init__(self, env: Env, resample: bool = True):
        super().__init__(env)
        self.resample = resample

    def reset(self, rng: jax.Array) -> State:
        """Batched reset; `rng` has shape (num_envs, 2)."""
        keys = jax.vmap(jax.random.split)(rng)
        state = self.env.reset(keys[:, 0])
        state.info["final_obs"] = state.obs
        if self.resample:
            state.info["reset_key"] = keys[:, 1]
        else:
            state.info["first_pipeline_state"] = state.pipeline_state
            state.info["first_obs"] = state.obs
        return state

    def step(self, state: State, action: jax.Array) -> State:
        """Steps every env, then replaces the physical state of the finished ones."""
        state.info["steps"] = jnp.where(state.done > 0, 0.0, state.info["steps"])
        state = self.env.step(state.replace(done=jnp.zeros_like(state.done)), action)
        state.info["final_obs"] = state.obs
        if self.resample:
            keys = jax.vmap(jax.random.split)(state.info["reset_key"])
            fresh = self.env.reset(keys[:, 0])
            first_pipeline, first_obs = fresh.pipeline_state, fresh.obs
            state.info["reset_key"] = keys[:, 1]
        else:
            first_pipeline = state.info["first_pipeline_state"]
            first_obs = state.info["first_obs"]
        done = state.done

        def select(x, y):
            return _where_done(done, x, y)

        return state.replace(
            pipeline_state=jax.tree.map(select, first_pipeline, state.pipeline_state),
            obs=jax.tree.map(select, first_obs, state.obs),
        )


def wrap_for_training(
    env: Env, episode_length: int, resample: bool = True, action_repeat: int = 1
) -> Env:
    """Episode limit, batching and auto-reset: reset(keys[n, 2]) / step(state, actions[n, a]).

    With ``action_repeat > 1`` each step holds the action for that many env steps and sums
    their rewards (Brax's ``EpisodeWrapper``)."""
    episodes = EpisodeWrapper(env, episode_length, action_repeat)
    return AutoResetWrapper(VmapWrapper(episodes), resample)


def episode_end(state: State, outcomes: tuple[str, ...]) -> dict[str, jax.Array]:
    """What an episode has at this step of a training-wrapped env (read where ``state.done``):
    its return so far (the episode wrapper's running ``sum_reward``) and each outcome metric."""
    return {
        "return": state.info["episode_metrics"]["sum_reward"],
        **{m: state.metrics[m] for m in outcomes},
    }
