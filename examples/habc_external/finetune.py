"""Fine-tunes a policy with HABC on episodes another process wrote (``collect.py``).

The policy is handed to rlx as a plain function ``act(params, obs) -> mean action`` and its
params (here: the weights of the ``squeeze-lift-l1-sft`` policy read from its artifact, but
``act`` is written out in jax.numpy, as any policy of your own would be), wrapped by
`rlx.algos.finetune.external.make_adapter`. Success of the deterministic policy is measured
on fresh ``squeeze_lift_l1`` episodes before and after::

    python examples/habc_external/finetune.py --episodes /tmp/habc_ext/episodes.npz --updates 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
from rlx.algos.finetune import habc
from rlx.algos.finetune.episodes import load_episodes
from rlx.algos.finetune.external import finetune, make_adapter

from rlx import envs
from rlx.data import recipes
from rlx.evaluation import evaluate
from rlx.policy import load_pretrained


def mlp_policy(stats: dict[str, jax.Array]):
    """``act(params, obs)``: tanh of a ReLU MLP (flax's ``Dense_<i>`` layers in order) of the
    observation standardised by `stats` (count, mean, m2; std floored at 0.01, clipped at 10)."""
    var = stats["m2"] / jnp.maximum(stats["count"] - 1.0, 1.0)
    std = jnp.maximum(jnp.sqrt(var + 1e-8), 1e-2)

    def act(params, obs: jax.Array) -> jax.Array:
        layers = params["params"]["MLP_0"]
        x = jnp.clip((obs - stats["mean"]) / std, -10.0, 10.0)
        names = sorted(layers, key=lambda name: int(name.split("_")[-1]))
        for name in names[:-1]:
            x = jax.nn.relu(x @ layers[name]["kernel"] + layers[name]["bias"])
        return jnp.tanh(x @ layers[names[-1]]["kernel"] + layers[names[-1]]["bias"])

    return act


def success(env, act, params, key: jax.Array, episodes: int) -> float:
    """Share of `episodes` deterministic episodes of ``act(params, .)`` that succeed."""
    run = jax.jit(lambda p, k: evaluate(env, lambda o, _k, _d: act(p, o), k, episodes, 150))
    return float(run(params, key)["eval/goal_reached"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=Path, required=True, help="collect.py's .npz")
    parser.add_argument("--updates", type=int, default=5, help="HABC updates")
    parser.add_argument("--eval-episodes", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tree = load_pretrained(recipes.cached("squeeze-lift-l1-sft"))
    act = mlp_policy({k: jnp.asarray(v) for k, v in tree["obs_stats"].items()})
    params = jax.tree.map(jnp.asarray, tree["policy"])
    env = envs.make("squeeze_lift_l1")
    adapter = make_adapter(act, params, action_size=env.action_size, observation_size=9)

    data = load_episodes(args.episodes, obs_size=9, action_size=env.action_size)
    print(
        f"{data.obs.shape[0]} episodes, {int(data.valid.sum())} steps, "
        f"{100 * float(data.success.mean()):.1f}% successful, expert on "
        f"{100 * float(data.intervened.sum() / data.valid.sum()):.1f}% of steps"
    )
    key = jax.random.PRNGKey(args.seed)
    before = success(env, act, params, key, args.eval_episodes)
    tuned = finetune(adapter, data, habc.Config(), args.updates, jax.random.PRNGKey(args.seed))
    after = success(env, act, tuned, key, args.eval_episodes)
    print(
        f"success over {args.eval_episodes} episodes: before {100 * before:.1f}%, "
        f"after {args.updates} HABC updates {100 * after:.1f}%"
    )


if __name__ == "__main__":
    main()
