"""Behaviour cloning (offline): regress a deterministic policy onto a dataset's actions.

The policy is ``mu_theta(s) = tanh(MLP_theta(norm(s)))`` in ``[-1, 1]^A``, with ``norm`` the
dataset's observation mean and standard deviation (computed once in `init`). One `update` is
``grad_steps_per_update`` Adam steps, each on a minibatch of ``B`` transitions drawn uniformly
with replacement from the ``"dataset"`` asset (`rlx.data.datasets`), minimising the mean squared
error

    L(theta) = 1/(B A) sum_i sum_j (mu_theta(s_i)_j - a_ij)^2

Nothing steps an environment; the budget ``total_steps`` counts gradient steps. The dataset is
read from ``assets["dataset"]`` at every update and never copied into the state.
``update -> _grad_step -> (sample_batch, _loss -> bc_loss)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax
from brax.envs.base import Env
from rlx.envs import observation_size

from rlx.algorithm import Algorithm, Unit
from rlx.config import GradientSteps, hparam, require, static
from rlx.data.assets import Assets
from rlx.data.datasets import DATASET
from rlx.errors import RlxError
from rlx.learn import normalizer
from rlx.learn.networks import ACTIVATIONS, MLP
from rlx.metrics import MetricRule

DESCRIPTION = "Behaviour cloning (offline): tanh-MLP policy, MSE to the dataset's actions."


@flax.struct.dataclass
class Config(GradientSteps):
    """BC settings. Static fields fix the program; hyperparameters are vmappable leaves."""

    total_steps: int = static(20_000, "Gradient steps per run.")
    grad_steps_per_update: int = static(500, "Gradient steps per update.")
    batch_size: int = static(256, "Transitions per gradient step (sampled with replacement).")
    hidden: tuple[int, ...] = static((256, 256), "Policy MLP hidden widths.")
    activation: str = static("relu", "Hidden activation: tanh, relu, silu or elu.")
    normalize_observations: bool = static(True, "Standardise observations by dataset statistics.")
    learning_rate: float = hparam(3e-4, "Adam step size.")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        self.check_gradient_budget()
        if self.activation not in ACTIVATIONS:
            raise RlxError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}."
            )
        if not all(w > 0 for w in self.hidden):
            raise RlxError("hidden layer widths must be positive integers.")
        require(self, learning_rate=(lambda v: v > 0, "> 0"))


class TanhPolicy(nn.Module):
    """Deterministic policy mu(s) = tanh(MLP(s)) in [-1, 1]^A."""

    hidden: Sequence[int]
    action_size: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return jnp.tanh(MLP(self.hidden, self.action_size, self.activation, out_scale=0.01)(obs))


@flax.struct.dataclass
class BCState:
    """Policy parameters, Adam moments, the dataset's observation statistics, RNG, counter."""

    config: Config
    params: Any
    opt_state: optax.OptState
    obs_stats: normalizer.RunningStats
    key: jax.Array
    update_step: jax.Array


def _network(env: Env, config: Config) -> TanhPolicy:
    return TanhPolicy(config.hidden, env.action_size, config.activation)


def _normalize(state: BCState, obs: jax.Array) -> jax.Array:
    if state.config.normalize_observations:
        return normalizer.normalize(state.obs_stats, obs)
    return obs


def init(key: jax.Array, env: Env, config: Config, assets: Assets = None) -> BCState:
    """Initial policy parameters and Adam moments, and the observation statistics of
    ``assets["dataset"]`` (two vectors; the dataset itself stays in the asset)."""
    k_params, k_next = jax.random.split(key)
    obs_size = observation_size(env)
    params = _network(env, config).init(k_params, jnp.zeros((obs_size,), jnp.float32))
    observations = jnp.asarray(_dataset(assets)["observations"])
    return BCState(
        config=config,
        params=params,
        opt_state=optax.scale_by_adam().init(params),
        obs_stats=normalizer.update(normalizer.init(obs_size), observations),
        key=k_next,
        update_step=jnp.zeros((), jnp.int32),
    )


def _dataset(assets: Assets) -> Any:
    if not assets or "dataset" not in assets:
        raise RlxError("bc needs a 'dataset' asset (rlx.data.datasets); give --asset dataset=PATH.")
    return assets["dataset"]


def policy_params(state: BCState) -> dict[str, Any]:
    """What the trained policy needs: the network's parameters and, with
    ``normalize_observations``, the dataset's observation statistics (`normalizer.as_dict`)."""
    params = {"policy": state.params}
    if state.config.normalize_observations:
        params["obs_stats"] = normalizer.as_dict(state.obs_stats)
    return params


def make_policy(params: dict[str, Any], env: Env, config: Config) -> Callable[..., jax.Array]:
    """act(obs, key, deterministic) = mu_theta(obs): deterministic either way, key unused."""
    net = _network(env, config)

    def act(obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
        if config.normalize_observations:
            obs = normalizer.normalize(normalizer.from_dict(params["obs_stats"]), obs)
        return net.apply(params["policy"], obs)

    return act


def bc_loss(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error over a batch: 1/(B A) sum_i sum_j (predicted_ij - target_ij)^2, for
    predicted and target actions of shape [B, A]."""
    chex.assert_rank(predicted, 2)
    chex.assert_equal_shape([predicted, target])
    return jnp.mean((predicted - target) ** 2)


def sample_batch(dataset: Any, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """(observations [B, obs], actions [B, act]) of B rows drawn uniformly with replacement."""
    size = dataset["observations"].shape[0]
    idx = jax.random.randint(key, (batch_size,), 0, size)
    return jnp.asarray(dataset["observations"])[idx], jnp.asarray(dataset["actions"])[idx]


def _loss(params: Any, env: Env, state: BCState, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """The BC loss of `params` on one minibatch (raw observations, normalised here)."""
    predicted = _network(env, state.config).apply(params, _normalize(state, obs))
    return bc_loss(predicted, actions)


def update(env: Env, state: BCState, assets: Assets = None) -> tuple[BCState, dict[str, jax.Array]]:
    """grad_steps_per_update Adam steps on uniform minibatches of ``assets["dataset"]``:
    theta <- theta - lr * Adam(grad L(theta)), lr a traced hyperparameter."""
    config = state.config
    dataset = _dataset(assets)
    key, k_steps = jax.random.split(state.key)
    tx = optax.scale_by_adam()
    grad_fn = jax.value_and_grad(_loss)

    def _grad_step(carry: tuple[Any, optax.OptState], step_key: jax.Array):
        params, opt_state = carry
        obs, actions = sample_batch(dataset, step_key, config.batch_size)
        loss, grads = grad_fn(params, env, state, obs, actions)
        steps, opt_state = tx.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, s: p - config.learning_rate * s, params, steps)
        return (params, opt_state), {"loss/bc": loss, "loss/grad_norm": optax.tree.norm(grads)}

    keys = jax.random.split(k_steps, config.grad_steps_per_update)
    (params, opt_state), info = jax.lax.scan(_grad_step, (state.params, state.opt_state), keys)
    metrics = {name: values.mean() for name, values in info.items()}
    new_state = state.replace(
        params=params, opt_state=opt_state, key=key, update_step=state.update_step + 1
    )
    return new_state, metrics


def metric_rules(env: Env) -> dict[str, MetricRule]:
    """BC's own metrics (no episodes: nothing steps an env during training)."""
    return {
        "loss/bc": MetricRule(label="BC loss (MSE)"),
        "loss/grad_norm": MetricRule(label="BC gradient norm"),
    }


ALGORITHM = Algorithm(
    name="bc",
    description=DESCRIPTION,
    Config=Config,
    init=init,
    update=update,
    policy_params=policy_params,
    make_policy=make_policy,
    unit=Unit.GRADIENT_STEPS,
    metric_rules=metric_rules,
    assets={"dataset": DATASET},
)
