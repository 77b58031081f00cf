"""Off-policy training on the device: many envs, a replay ring inside the state, one learner.

An off-policy algorithm is a *learner* (TD3, SAC: networks and losses, `Learner`) combined with
a *behaviour* (`Behaviour`: how the action that is executed is chosen from the learner's
proposal: as is, as a residual on a baseline controller, or arbitrated against the baseline by
agency transfer). `assemble` turns the pair into the algorithm contract of `rlx.algorithm`
(``init / update / policy``). One `update` is::

    update -> _rollout(_env_step x unroll_length)   # propose, execute, step num_envs envs
           -> replay.add                            # [unroll_length * num_envs] transitions
           -> _learn(_group x grad_steps/group)     # learner steps on uniform replay batches

Transitions store ``final_obs`` (the state reached before an auto-reset) as ``next_obs`` and
``terminal = done * (1 - truncation)``, so a time-out is bootstrapped and a termination is not.
Before ``learning_starts`` env steps the proposal is uniform in [-1, 1] and the learner's
state is held fixed (its gradient steps are computed and discarded: fixed shapes, no branch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import chex
import flax.struct
import jax
import jax.numpy as jnp
import optax
from brax.envs.base import Env, State

from rlx import replay
from rlx.algorithm import Algorithm, env_episode_rules
from rlx.assets import Assets
from rlx.config import Rollouts, hparam, require, require_budget, require_counts, static
from rlx.envs import episode_length as default_episode_length
from rlx.envs import observation_size, outcome_metrics, training_env
from rlx.errors import RlxError
from rlx.metrics import MetricRule


@flax.struct.dataclass
class Config(Rollouts):
    """Settings every off-policy algorithm shares; learners and behaviours subclass it."""

    total_steps: int = static(100_000, "Env steps per run (all envs together).")
    num_envs: int = static(16, "Parallel environments per run.")
    unroll_length: int = static(8, "Env steps per env between two learning phases.")
    utd_ratio: float = static(0.25, "Update-to-data ratio: gradient steps per env step.")
    batch_size: int = static(256, "Replay batch size of one gradient step.")
    buffer_size: int = static(1_000_000, "Replay capacity (capped at total_steps).")
    learning_starts: int = static(5_000, "Env steps of uniform random proposals before learning.")
    hidden: tuple[int, ...] = static((256, 256), "Actor and critic MLP hidden widths (ReLU).")
    episode_length: int = static(0, "Episode time limit in steps (0: the environment's default).")
    gamma: float = hparam(0.99, "Discount factor.")
    tau: float = hparam(0.005, "Polyak rate of the target networks.")
    reward_scaling: float = hparam(1.0, "Rewards are multiplied by this in the critic target.")

    @property
    def grad_steps(self) -> int:
        """Gradient steps per update: utd_ratio * steps_per_update."""
        return round(self.utd_ratio * self.steps_per_update)

    @property
    def capacity(self) -> int:
        """Replay rows: min(buffer_size, total_steps)."""
        return min(self.buffer_size, self.total_steps)

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed."""
        require_counts(
            self,
            ("total_steps", "num_envs", "unroll_length", "batch_size", "buffer_size"),
            ("learning_starts", "episode_length"),
        )
        require_budget(self)
        exact = self.utd_ratio * self.steps_per_update
        if self.utd_ratio <= 0 or abs(exact - round(exact)) > 1e-9:
            raise RlxError(
                f"utd_ratio={self.utd_ratio} times num_envs*unroll_length={self.steps_per_update} "
                f"must be a positive whole number of gradient steps (got {exact:g})."
            )
        if not self.hidden or not all(w > 0 for w in self.hidden):
            raise RlxError(f"hidden widths must be positive integers, got {self.hidden}.")
        require(
            self,
            gamma=(lambda v: 0 <= v <= 1, "in [0, 1]"),
            tau=(lambda v: 0 < v <= 1, "in (0, 1]"),
            reward_scaling=(lambda v: v > 0, "> 0"),
        )


class Transition(NamedTuple):
    """One stored step: s, a, r, terminal (no bootstrap) and s' (before any auto-reset)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminal: jax.Array
    next_obs: jax.Array


class Learner(NamedTuple):
    """A learner's pure functions. `ls` is its state (params, targets, optimiser states)."""

    init: Callable[[jax.Array, int, int, Any], Any]  # (key, obs_size, action_size, cfg) -> ls
    explore: Callable[[Any, jax.Array, jax.Array, Any], jax.Array]  # (ls, obs, key, cfg) -> a
    act: Callable[[Any, jax.Array, Any], jax.Array]  # (ls, obs, cfg) -> deterministic a
    certify: Callable[[Any, jax.Array, jax.Array, Any], jax.Array]  # min target Q(s, a)
    learn: Callable[[Any, Transition, jax.Array, Any], tuple[Any, dict]]  # one group of steps
    group_size: Callable[[Any], int]  # gradient steps per `learn` call (TD3: policy delay)


class StepInput(NamedTuple):
    """What a behaviour sees at one env step (batched over the run's envs)."""

    config: Any
    learner: Learner
    ls: Any
    obs: jax.Array
    proposal: jax.Array
    baseline: jax.Array | None
    env_steps: jax.Array


class Behaviour(NamedTuple):
    """How executed and stored actions come from the learner's proposal."""

    name: str
    needs_baseline: bool
    init: Callable[[Any, int, int], Any]  # (cfg, num_envs, episode_length) -> carry
    # (StepInput, carry, key) -> (executed, stored, keep in buffer, carry, metrics)
    act: Callable[[StepInput, Any, jax.Array], tuple]
    # (cfg, carry, done[N], lengths[N], env_steps) -> carry, after the env step
    end_episodes: Callable[[Any, Any, jax.Array, jax.Array, jax.Array], Any]
    # (env, learner action, obs) -> executed action of the standalone policy
    evaluate: Callable[[Env, jax.Array, jax.Array], jax.Array]
    # rules of the training metrics `act` reports (rlx.metrics)
    metric_rules: Mapping[str, MetricRule] = MappingProxyType({})


def _plain_act(x: StepInput, carry: Any, key: jax.Array) -> tuple:
    keep = jnp.ones(x.proposal.shape[:1], bool)
    return x.proposal, x.proposal, keep, carry, {}


PLAIN = Behaviour(
    name="plain",
    needs_baseline=False,
    init=lambda cfg, n, length: (),
    act=_plain_act,
    end_episodes=lambda cfg, carry, done, lengths, steps: carry,
    evaluate=lambda env, action, obs: action,
)


@flax.struct.dataclass
class OffPolicyState:
    """Everything a run needs to continue: a plain pytree."""

    config: Any
    learner: Any
    buffer: replay.Buffer
    env_state: State
    behaviour: Any
    key: jax.Array
    env_steps: jax.Array
    update_step: jax.Array


def check_baseline(env: Env, what: str) -> None:
    """Raises RlxError if `env` has no `baseline_policy` (a hand-made controller)."""
    if not callable(getattr(env, "baseline_policy", None)):
        from rlx import envs

        with_baseline = [
            n for n in envs.names() if not envs.is_brax(n) and envs.has_baseline(envs.make(n))
        ]
        raise RlxError(
            f"{what} needs an environment with a baseline controller (baseline_policy); "
            f"{type(env).__name__} has none. Environments with one: {', '.join(with_baseline)}."
        )


def adam_step(
    params: Any, grads: Any, opt_state: optax.OptState, lr: jax.Array
) -> tuple[Any, optax.OptState]:
    """theta <- theta - lr * Adam(g); lr is a traced value, so a learning-rate grid shares one
    compiled program."""
    steps, opt_state = optax.scale_by_adam().update(grads, opt_state, params)
    return jax.tree.map(lambda p, s: p - lr * s, params, steps), opt_state


def polyak(target: Any, online: Any, tau: jax.Array) -> Any:
    """theta' <- (1 - tau) theta' + tau theta."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def assemble(
    name: str, description: str, config_cls: type, learner: Learner, behaviour: Behaviour
) -> Algorithm:
    """The algorithm record of a learner run under a behaviour."""

    def init(key: jax.Array, env: Env, config: Any, assets: Assets = None) -> OffPolicyState:
        """Learner state, an empty replay ring and a batch of reset environments."""
        k_learner, k_env, k_next = jax.random.split(key, 3)
        obs_size = observation_size(env)
        example = Transition(
            obs=jnp.zeros((obs_size,), jnp.float32),
            action=jnp.zeros((env.action_size,), jnp.float32),
            reward=jnp.zeros((), jnp.float32),
            terminal=jnp.zeros((), jnp.float32),
            next_obs=jnp.zeros((obs_size,), jnp.float32),
        )
        length = config.episode_length or default_episode_length(env)
        return OffPolicyState(
            config=config,
            learner=learner.init(k_learner, obs_size, env.action_size, config),
            buffer=replay.init(example, config.capacity),
            env_state=training_env(env, config.episode_length).reset(
                jax.random.split(k_env, config.num_envs)
            ),
            behaviour=behaviour.init(config, config.num_envs, length),
            key=k_next,
            env_steps=jnp.zeros((), jnp.int32),
            update_step=jnp.zeros((), jnp.int32),
        )

    def policy(state: OffPolicyState, env: Env) -> Callable[..., jax.Array]:
        """act(obs, key, deterministic=False): the standalone learner (no arbitration)."""

        def act(obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
            if deterministic:
                a = learner.act(state.learner, obs, state.config)
            else:
                a = learner.explore(state.learner, obs, key, state.config)
            return behaviour.evaluate(env, a, obs)

        return act

    def _rollout(env: Env, state: OffPolicyState, key: jax.Array):
        config = state.config
        tenv = training_env(env, config.episode_length)
        outcomes = outcome_metrics(env)
        n, a_size = config.num_envs, env.action_size

        def _env_step(carry, step_key):
            env_state, b_carry, env_steps = carry
            k_explore, k_uniform, k_behave = jax.random.split(step_key, 3)
            obs = env_state.obs
            proposal = jnp.where(
                env_steps < config.learning_starts,
                jax.random.uniform(k_uniform, (n, a_size), jnp.float32, -1.0, 1.0),
                learner.explore(state.learner, obs, k_explore, config),
            )
            base = env.baseline_policy(obs) if behaviour.needs_baseline else None
            x = StepInput(config, learner, state.learner, obs, proposal, base, env_steps)
            executed, stored, keep, b_carry, b_metrics = behaviour.act(x, b_carry, k_behave)
            nxt = tenv.step(env_state, executed)
            env_steps = env_steps + n
            b_carry = behaviour.end_episodes(
                config, b_carry, nxt.done, nxt.info["steps"], env_steps
            )
            transition = Transition(
                obs=obs,
                action=stored,
                reward=nxt.reward,
                terminal=nxt.done * (1.0 - nxt.info["truncation"]),
                next_obs=nxt.info["final_obs"],
            )
            ends = {
                "done": nxt.done,
                "return": nxt.info["episode_metrics"]["sum_reward"],
                **{m: nxt.metrics[m] for m in outcomes},
            }
            return (nxt, b_carry, env_steps), (transition, keep, ends, b_metrics)

        carry = (state.env_state, state.behaviour, state.env_steps)
        keys = jax.random.split(key, config.unroll_length)
        return jax.lax.scan(_env_step, carry, keys)

    def _learn(state: OffPolicyState, buffer: replay.Buffer, active: jax.Array, key: jax.Array):
        config = state.config
        group = learner.group_size(config)

        def _group(ls, group_key):
            k_sample, k_learn = jax.random.split(group_key)
            batch = replay.sample(buffer, k_sample, group * config.batch_size)
            batch = jax.tree.map(
                lambda x: x.reshape((group, config.batch_size, *x.shape[1:])), batch
            )
            return learner.learn(ls, batch, k_learn, config)

        new, info = jax.lax.scan(
            _group, state.learner, jax.random.split(key, config.grad_steps // group)
        )
        kept = jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state.learner)
        return kept, {k: jnp.where(active, v.mean(), 0.0) for k, v in info.items()}

    def update(
        env: Env, state: OffPolicyState, assets: Assets = None
    ) -> tuple[OffPolicyState, dict[str, jax.Array]]:
        """One iteration: unroll_length env steps of every env, then grad_steps learner steps."""
        config = state.config
        key, k_roll, k_learn = jax.random.split(state.key, 3)
        (env_state, b_carry, env_steps), (traj, keep, ends, b_metrics) = _rollout(
            env, state, k_roll
        )
        chex.assert_shape(traj.reward, (config.unroll_length, config.num_envs))
        flat = jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), traj)
        buffer = replay.add(state.buffer, flat, keep.reshape(-1))
        active = (env_steps >= config.learning_starts) & (buffer.size >= config.batch_size)
        learner_state, metrics = _learn(state, buffer, active, k_learn)
        metrics.update(episode_summary(ends))
        metrics.update({k: v.mean() for k, v in b_metrics.items()})
        new_state = state.replace(
            learner=learner_state,
            buffer=buffer,
            env_state=env_state,
            behaviour=b_carry,
            key=key,
            env_steps=env_steps,
            update_step=state.update_step + 1,
        )
        return new_state, metrics

    def check_env(env: Env, config: Any) -> None:
        """Refuses environments this algorithm cannot run on."""
        if behaviour.needs_baseline:
            check_baseline(env, name)

    return Algorithm(
        name=name,
        description=description,
        Config=config_cls,
        init=init,
        update=update,
        policy=policy,
        check_env=check_env,
        metric_rules=lambda env: {**env_episode_rules(env), **behaviour.metric_rules},
    )


def episode_summary(ends: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Training metrics of the episodes that ended in a rollout (``ends`` leaves ``[T, N]``):
    ``train/episodes`` and, per outcome, its mean over those episodes as ``train/episode_*``
    (0 when none ended; the runner weights them by ``train/episodes``)."""
    done = ends["done"]
    count = done.sum()
    out = {"train/episodes": count}
    for key, value in ends.items():
        if key != "done":
            out[f"train/episode_{key}"] = (done * value).sum() / jnp.maximum(count, 1.0)
    return out
