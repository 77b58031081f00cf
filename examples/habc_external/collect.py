"""Collects episodes for HABC in a process of its own and writes them to an ``.npz`` file.

The policy is the supervised (behaviour-cloned) policy of ``squeeze_lift_l1`` (rlx's
``squeeze-lift-l1-sft`` recipe, built into the cache on first use), acting with Gaussian noise;
the env's scripted expert takes over whenever ``env.danger(state)`` fires (reason code 1,
"danger") and holds for at least ``--hold`` steps. The file follows the schema of
`rlx.algos.finetune.episodes` and is written with plain NumPy::

    python examples/habc_external/collect.py --episodes 256 --out /tmp/habc_ext/episodes.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import rlx
from rlx import envs
from rlx.data import recipes

POLICY, DANGER = 0, 1  # the schema's reason codes: the policy acted / the expert, for danger


def rollout(env, act, key: jax.Array, n: int, steps: int, noise: float, hold: int) -> dict:
    """`n` episodes of `steps` steps: the noisy policy, the expert on danger (and `hold`
    steps after it last fired); per step obs, next obs, action, reason, live; per episode
    the step it succeeded on (-1: never)."""

    def step(carry, k):
        state, alive, left, success_step, t = carry
        k_act, k_noise = jax.random.split(k)
        mean = jax.vmap(lambda o: act(o, k_act, True))(state.obs)
        own = mean + noise * jax.random.normal(k_noise, mean.shape)
        danger = env.danger(state)
        expert = danger | (left > 0)
        left = jnp.where(danger, hold, jnp.maximum(left - 1, 0))
        action = jnp.where(expert[:, None], env.baseline_policy(state.obs), own)
        nxt = jax.vmap(env.step)(state, jnp.clip(action, -1.0, 1.0))
        live = alive > 0
        won = live & (nxt.metrics["goal_reached"] > 0) & (success_step < 0)
        success_step = jnp.where(won, t, success_step)
        reason = jnp.where(expert, DANGER, POLICY)
        row = (state.obs, nxt.obs, action, reason, live)
        return (nxt, alive * (1.0 - nxt.done), left, success_step, t + 1), row

    k_reset, k_steps = jax.random.split(key)
    first = jax.vmap(env.reset)(jax.random.split(k_reset, n))
    carry = (first, jnp.ones((n,)), jnp.zeros((n,), jnp.int32), -jnp.ones((n,), jnp.int32), 0)
    (_, _, _, success_step, _), rows = jax.lax.scan(step, carry, jax.random.split(k_steps, steps))
    obs, next_obs, action, reason, live = (jnp.swapaxes(x, 0, 1) for x in rows)
    return {"obs": obs, "next_obs": next_obs, "action": action, "reason": reason,
            "length": live.sum(1), "success": success_step >= 0,
            "success_step": success_step}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--steps", type=int, default=150, help="steps per episode (T)")
    parser.add_argument("--noise", type=float, default=0.1, help="exploration noise std")
    parser.add_argument("--hold", type=int, default=10, help="expert's steps after danger")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    env = envs.make("squeeze_lift_l1")
    act = rlx.load_policy(recipes.cached("squeeze-lift-l1-sft"))  # act(obs, key, deterministic)
    run = jax.jit(lambda k: rollout(env, act, k, args.episodes, args.steps, args.noise, args.hold))
    data = {k: np.asarray(v) for k, v in run(jax.random.PRNGKey(args.seed)).items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **data)
    expert = data["reason"][np.arange(args.steps)[None] < data["length"][:, None]] > 0
    print(
        f"wrote {args.out}: {args.episodes} episodes, {int(data['length'].sum())} steps, "
        f"success {100 * data['success'].mean():.1f}%, expert on {100 * expert.mean():.1f}% "
        f"of steps (danger)"
    )


if __name__ == "__main__":
    main()
