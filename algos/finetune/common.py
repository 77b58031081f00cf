"""What the fine-tuning algorithms share (`rlx.algos.finetune.habc`, `rlx.algos.finetune.sft_ppo`).

- **The pretrained policy**: the asset (`PRETRAINED`, a ``bc`` artifact checked against the
  fine-tuner's `policy_net`) and the start it gives (`pretrained_start`: its network's params
  and its frozen observation statistics);
- **the row sampler**: the valid rows of an update's episodes as a `Pool` (`pool`) and
  minibatches of indices drawn uniformly from it with replacement (`draw`);
- **the env checks and the success diagnostic**: `require_success_outcome` and
  `success_steps` (the deterministic policy's mean steps to success, ``SUCCESS_STEPS``).

A fine-tuner's config has the pretrained network's ``hidden`` widths and ``activation``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos.bc import TanhPolicy

from rlx import envs as env_lib
from rlx.data.assets import Assets, AssetSpec
from rlx.errors import RlxError
from rlx.learn import normalizer
from rlx.policy import PRETRAINED_DOC, check_pretrained, load_pretrained

SUCCESS_STEPS = "eval/success_steps"
"""The metric of `success_steps`: the deterministic policy's mean steps to success."""


# --- the pretrained policy -------------------------------------------------------------------


def policy_net(env: Env, config: Any) -> TanhPolicy:
    """The pretrained policy's network mu_theta(s) = tanh(MLP_theta(s)) (``bc``'s), with the
    config's ``hidden`` widths and ``activation``; it sees normalised observations."""
    return TanhPolicy(config.hidden, env.action_size, config.activation)


PRETRAINED = AssetSpec(
    PRETRAINED_DOC,
    load_pretrained,
    check=lambda tree, env, config: check_pretrained(tree, env, config, policy_net(env, config)),
)
"""The ``pretrained`` asset of a fine-tuner: a ``bc`` policy artifact whose network has the
shapes and activation of `policy_net` for the env and config."""


def pretrained_start(assets: Assets, algorithm: str) -> tuple[Any, normalizer.RunningStats]:
    """The pretrained policy's network params and its (frozen) observation statistics, as
    device arrays copied from the ``pretrained`` asset; RlxError naming `algorithm` without one."""
    if not assets or "pretrained" not in assets:
        raise RlxError(
            f"{algorithm} needs a 'pretrained' policy asset; give --asset pretrained=DIR."
        )
    pre = assets["pretrained"]
    policy = jax.tree.map(jnp.asarray, pre["policy"])
    return policy, normalizer.from_dict(jax.tree.map(jnp.asarray, pre["obs_stats"]))


# --- the row sampler -------------------------------------------------------------------------


class Pool(NamedTuple):
    """The rows a sampler draws from: their indices first (the rest padding) and count."""

    index: jax.Array  # [N] int32
    count: jax.Array  # () int32


def pool(mask: jax.Array) -> Pool:
    """The True entries of a flat `mask` as a `Pool` (one sort per update, not per draw)."""
    (index,) = jnp.nonzero(mask, size=mask.shape[0], fill_value=0)
    return Pool(index.astype(jnp.int32), jnp.sum(mask.astype(jnp.int32)))


def draw(key: jax.Array, rows: Pool, batch: int) -> jax.Array:
    """`batch` row indices drawn uniformly with replacement from the pool (row 0 when it is
    empty: the caller's mask then zeroes their loss)."""
    slot = jax.random.randint(key, (batch,), 0, jnp.maximum(rows.count, 1))
    return rows.index[slot]


# --- env checks and the success diagnostic ---------------------------------------------------


def require_success_outcome(env: Env, algorithm: str) -> None:
    """RlxError unless the env's metrics report an episode's success (``goal_reached``)."""
    if "goal_reached" not in env_lib.outcome_metrics(env):
        raise RlxError(
            f"{algorithm} needs an env whose metrics report success (goal_reached); "
            f"{type(env).__name__} reports {', '.join(env_lib.outcome_metrics(env)) or 'none'}."
        )


def success_steps(act: Callable[..., jax.Array], env: Env, n: int, episode_length: int,
                  key: jax.Array) -> dict[str, jax.Array]:  # fmt: skip
    """``{SUCCESS_STEPS: mean steps to success}`` of the deterministic `act` over `n` episodes of
    ``episode_length`` steps (0: the env's default) from fresh resets, NaN when none succeeds."""
    length = episode_length or env_lib.episode_length(env)

    def _step(carry, _):
        env_state, alive, steps, won = carry
        nxt = jax.vmap(env.step)(env_state, jax.vmap(lambda o: act(o, key, True))(env_state.obs))
        won = won | ((alive > 0) & (nxt.metrics["goal_reached"] > 0))
        return (nxt, alive * (1.0 - nxt.done), steps + alive, won), None

    zeros = jnp.zeros((n,), jnp.float32)
    first = jax.vmap(env.reset)(jax.random.split(key, n))
    init_carry = (first, jnp.ones_like(zeros), zeros, jnp.zeros((n,), bool))
    (_, _, steps, won), _ = jax.lax.scan(_step, init_carry, None, length=length)
    count = won.sum()
    mean = jnp.sum(jnp.where(won, steps, 0.0)) / jnp.maximum(count, 1)
    return {SUCCESS_STEPS: jnp.where(count > 0, mean, jnp.nan)}
