"""The environment's hand-made baseline controller alone: no learning, the reference row.

``update`` steps ``num_envs`` auto-resetting envs for ``unroll_length`` steps with
``pi_0(s)`` and reports the finished episodes' returns and outcomes, exactly as the learners'
training metrics are reported; the policy is ``pi_0`` (deterministic, the key is unused).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from rlx.envs import outcome_metrics, require_baseline, training_env
from rlx.envs.wrappers import episode_end

from rlx.algorithm import Algorithm, env_episode_rules
from rlx.config import Rollouts, require_budget, require_counts, static
from rlx.data.assets import Assets
from rlx.metrics import MetricRule, episode_summary

DESCRIPTION = "The env's baseline controller alone (no learning): the reference row of a table."


@flax.struct.dataclass
class Config(Rollouts):
    """Settings of a baseline-only run (no hyperparameters)."""

    total_steps: int = static(100_000, "Env steps per run (all envs together).")
    num_envs: int = static(16, "Parallel environments per run.")
    unroll_length: int = static(8, "Env steps per env per update.")
    episode_length: int = static(0, "Episode time limit in steps (0: the environment's default).")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        require_counts(self, ("total_steps", "num_envs", "unroll_length"), ("episode_length",))
        require_budget(self)


@flax.struct.dataclass
class BaselineState:
    """Env states, RNG and the update counter."""

    config: Config
    env_state: State
    key: jax.Array
    update_step: jax.Array


def check_env(env: Env, config: Config) -> None:
    """Refuses environments without a baseline controller."""
    require_baseline(env, "baseline")


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> BaselineState:
    """A batch of reset environments."""
    k_env, k_next = jax.random.split(key)
    env_state = training_env(env, config.episode_length).reset(
        jax.random.split(k_env, config.num_envs)
    )
    return BaselineState(config, env_state, k_next, jnp.zeros((), jnp.int32))


def policy_params(state: BaselineState) -> dict[str, Any]:
    """Nothing is learned: the policy is the env's controller, it has no parameters."""
    return {}


def make_policy(params: dict[str, Any], env: Env, config: Config) -> Callable[..., jax.Array]:
    """act(obs, key, deterministic) = pi_0(obs) (`params` is empty)."""
    return lambda obs, key, deterministic=False: env.baseline_policy(obs)


def update(
    env: Env, state: BaselineState, assets: Assets = None
) -> tuple[BaselineState, dict[str, jax.Array]]:
    """unroll_length steps of every env under pi_0; episode returns and outcomes."""
    tenv = training_env(env, state.config.episode_length)
    outcomes = outcome_metrics(env)

    def _env_step(env_state: State, _):
        nxt = tenv.step(env_state, env.baseline_policy(env_state.obs))
        ends = episode_end(nxt, outcomes)
        return nxt, (nxt.done, ends)

    env_state, (done, ends) = jax.lax.scan(
        _env_step, state.env_state, None, state.config.unroll_length
    )
    metrics = episode_summary(done, ends)
    metrics["train/baseline_share"] = jnp.ones((), jnp.float32)
    return state.replace(env_state=env_state, update_step=state.update_step + 1), metrics


ALGORITHM = Algorithm(
    name="baseline",
    description=DESCRIPTION,
    Config=Config,
    init=init,
    update=update,
    policy_params=policy_params,
    make_policy=make_policy,
    check_env=check_env,
    metric_rules=lambda env: {
        **env_episode_rules(env),
        "train/baseline_share": MetricRule(label="baseline share", percent=True),
    },
)
