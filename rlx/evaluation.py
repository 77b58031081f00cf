"""Policy evaluation: fixed-length episodes of the unwrapped env, vmapped, inside jit.

Envs with evaluation tasks (an optional capability: ``num_tasks`` and ``reset_task(key, t)``,
e.g. OGBench's five start/goal pairs per maze) are evaluated on every task equally often:
episode ``e`` runs task ``e mod num_tasks``, and each outcome is also reported per task.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State

from rlx.envs import outcome_metrics, outcome_rules
from rlx.errors import RlxError
from rlx.metrics import MetricRule, eval_rules


def num_tasks(env: Env) -> int:
    """The env's number of evaluation tasks (0 for envs without ``reset_task``)."""
    if not callable(getattr(env, "reset_task", None)):
        return 0
    return int(getattr(env, "num_tasks", 0))


DEFAULT_EPISODES = 16


def default_episodes(env: Env) -> int:
    """Evaluation episodes when none are asked for: 16, rounded up to a multiple of the env's
    evaluation tasks (20 for five tasks), so every task runs equally often."""
    tasks = num_tasks(env)
    return -(-DEFAULT_EPISODES // tasks) * tasks if tasks else DEFAULT_EPISODES


def check_episodes(env: Env, episodes: int) -> None:
    """Raises RlxError unless `episodes` covers every evaluation task equally often."""
    tasks = num_tasks(env)
    if tasks and episodes % tasks:
        raise RlxError(
            f"eval_episodes={episodes} must be a multiple of {type(env).__name__}'s {tasks} "
            f"evaluation tasks (each task runs eval_episodes/{tasks} episodes), e.g. "
            f"{max(1, round(episodes / tasks)) * tasks}."
        )


def task_metric(name: str, task: int) -> str:
    """The name of outcome `name` on task `task` (1-based): ``eval/task<t>/<name>``."""
    return f"eval/task{task}/{name}"


def metric_rules(env: Env) -> dict[str, MetricRule]:
    """Rules of every metric `evaluate` reports for `env`: the return, each outcome and, for
    envs with tasks, each outcome per task."""
    outcomes = outcome_rules(env)
    rules = eval_rules(outcomes)
    for t in range(1, num_tasks(env) + 1):
        for name, rule in outcomes.items():
            label = f"{rule.label or name} (task {t})"
            rules[task_metric(name, t)] = MetricRule("mean", label, rule.percent)
    return rules


def _reset(env: Env, key: jax.Array, episodes: int) -> State:
    """Initial states of `episodes` episodes: episode e on task e mod num_tasks when the env
    has tasks, else from ``env.reset``."""
    keys = jax.random.split(key, episodes)
    tasks = num_tasks(env)
    if not tasks:
        return jax.vmap(env.reset)(keys)
    return jax.vmap(env.reset_task)(keys, jnp.arange(episodes, dtype=jnp.int32) % tasks)


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
    goal set); with evaluation tasks also ``eval/task<t>/<name>``, the mean over task t's
    episodes.
    """
    reset_keys, act_key = jax.random.split(key)
    state = _reset(env, reset_keys, num_episodes)
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
    tasks = num_tasks(env)
    for t in range(tasks):
        for m, v in last.items():
            out[task_metric(m, t + 1)] = v[t::tasks].mean()
    return out
