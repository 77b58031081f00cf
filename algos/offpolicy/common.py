"""Off-policy training on the device: many envs, a replay ring inside the state, one learner.

An off-policy algorithm is a *learner* (TD3, SAC: networks and losses; a `Learner`) run under a
*behaviour* (a `Behaviour`: how the executed action is chosen from the learner's proposal: as
is, as a residual on a baseline controller, or arbitrated against the baseline by agency
transfer). `assemble` turns the pair into the algorithm record of `rlx.algorithm`
(``init / update / policy_params / make_policy``). One `update` is::

    update -> rollout(_env_step x unroll_length)    # propose, act, step num_envs envs
           -> replay.add                            # [unroll_length * num_envs] transitions
           -> learn(_group x grad_steps/group)      # learner steps on uniform replay batches

Its pieces are public (`propose`, `certifier`, `rollout`, `learn`, with the `Learner` and
`Behaviour` protocols), so a new learner or behaviour composes them as TD3, SAC, residual RL
and agency transfer do.

The behaviour never sees the learner or its state: at each step it gets the proposal and a
`Certify` function, ``certify(obs, action) -> min_j Q'_j(s, a)``, closed over the learner's
state by this module, and answers with a `BehaviourStep`.

Transitions store ``final_obs`` (the state reached before an auto-reset) as ``next_obs`` and
``terminal = done * (1 - truncation)``, so a time-out is bootstrapped and a termination is not.
Before ``learning_starts`` env steps the proposal is uniform in [-1, 1] and the learner's
state is held fixed (its gradient steps are computed and discarded: fixed shapes, no branch).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

import chex
import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from rlx.algos.offpolicy import replay
from rlx.envs import episode_length as default_episode_length
from rlx.envs import observation_size, outcome_metrics, require_baseline, training_env
from rlx.envs.wrappers import episode_end

from rlx.algorithm import Algorithm, env_episode_rules
from rlx.config import Rollouts, hparam, require, require_budget, require_counts, static
from rlx.data.assets import Assets
from rlx.errors import RlxError
from rlx.metrics import MetricRule, episode_summary

S = TypeVar("S")
"""A learner's state (params, targets, optimiser states): a pytree."""
C = TypeVar("C")
"""A behaviour's carry between env steps (e.g. agency transfer's arbiter): a pytree."""


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


@runtime_checkable
class Learner(Protocol[S]):
    """A learner's pure functions (TD3, SAC). ``config`` is the run's config (the learner's
    `Config` subclass, hyperparameters traced); ``state`` is the learner's own state pytree,
    which knows its action size. Observations and actions may carry leading batch axes."""

    def init(
        self,
        key: jax.Array,
        obs_size: int,
        action_size: int,
        config: Any,
        action_scale: tuple[float, ...] | None = None,
    ) -> S:
        """Fresh learner state for observations of width ``obs_size`` and actions of width
        ``action_size`` (kept in the state). ``action_scale``: the env's physical units per
        normalised action unit (`action_scale`; SAC states its target entropy in them)."""
        ...

    def policy_params(self, state: S) -> Any:
        """The actor's parameters: all `act` and `explore` need (nested dicts of arrays)."""
        ...

    def explore(
        self, params: Any, obs: jax.Array, key: jax.Array, action_size: int, config: Any
    ) -> jax.Array:
        """The behaviour action of the actor with `params` (`policy_params`): a sample of its
        exploring policy, in [-1, 1]."""
        ...

    def act(self, params: Any, obs: jax.Array, action_size: int, config: Any) -> jax.Array:
        """The deterministic action of the actor with `params`, in [-1, 1] (evaluation, export)."""
        ...

    def certify(self, state: S, obs: jax.Array, action: jax.Array, config: Any) -> jax.Array:
        """The value certificate of an action, min_j Q'_j(s, a) of the target critics."""
        ...

    def learn(
        self, state: S, batches: Transition, key: jax.Array, config: Any
    ) -> tuple[S, dict[str, jax.Array]]:
        """One group of gradient steps on ``batches`` (leaves ``[group_size, batch, ...]``),
        with its scalar loss metrics."""
        ...

    def group_size(self, config: Any) -> int:
        """Gradient steps per `learn` call (TD3: the policy delay; SAC: 1)."""
        ...


class Certify(Protocol):
    """A value certificate of actions, closed over the learner's current state (`certifier`)."""

    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """min_j Q'_j(s, a) of the target critics, ``[N]`` for obs ``[N, O]``, action ``[N, A]``."""
        ...


class StepInput(NamedTuple):
    """What a behaviour sees at one env step (batched over the run's ``N`` envs)."""

    config: Any
    """The run's config (hyperparameters traced)."""
    obs: jax.Array
    """Observations ``[N, O]``."""
    proposal: jax.Array
    """The learner's exploring action ``[N, A]`` (uniform before ``learning_starts``)."""
    baseline: jax.Array | None
    """The baseline controller's action ``[N, A]``, or None if the behaviour needs none."""
    env_steps: jax.Array
    """Env steps taken so far by the run (all envs together)."""
    certify: Certify
    """``certify(obs, action) -> [N]``: the learner's value certificate of an action."""


class BehaviourStep(NamedTuple):
    """A behaviour's answer at one env step (batched over the run's ``N`` envs)."""

    executed: jax.Array
    """The action sent to the environment ``[N, A]``."""
    stored: jax.Array
    """The action written to the replay buffer ``[N, A]``."""
    keep: jax.Array
    """Whether the transition is written to the buffer ``[N]`` (bool)."""
    carry: Any
    """The behaviour's carry for the next step."""
    metrics: dict[str, jax.Array]
    """Training metrics of this step (averaged over the update's steps; rules in
    `Behaviour.metric_rules`)."""


@runtime_checkable
class Behaviour(Protocol[C]):
    """How the executed and stored actions come from the learner's proposal."""

    name: str
    """Short name (``plain``, ``residual``, ``agency_transfer``)."""
    needs_baseline: bool
    """True if it needs the env's ``baseline_policy`` (then `StepInput.baseline` is set)."""
    metric_rules: Mapping[str, MetricRule]
    """Rules of the training metrics `act` reports (`rlx.metrics`)."""

    def init(self, config: Any, num_envs: int, episode_length: int) -> C:
        """The carry at the start of training."""
        ...

    def act(self, x: StepInput, carry: C, key: jax.Array) -> BehaviourStep:
        """Executed and stored actions, buffer mask, next carry and metrics of one env step."""
        ...

    def end_episodes(
        self, config: Any, carry: C, done: jax.Array, lengths: jax.Array, env_steps: jax.Array
    ) -> C:
        """The carry after an env step in which the envs with ``done[N]`` ended episodes of
        ``lengths[N]`` steps; ``env_steps`` counts the steps taken so far, this one included."""
        ...

    def evaluate(self, env: Env, action: jax.Array, obs: jax.Array) -> jax.Array:
        """The trained policy's executed action, from the learner's action (evaluation)."""
        ...


class Memoryless:
    """Defaults of a `Behaviour` without carry that evaluates the learner's action as is;
    subclasses define `act` (and may override the rest)."""

    name: str = "memoryless"
    needs_baseline: bool = False
    metric_rules: Mapping[str, MetricRule] = MappingProxyType({})

    def init(self, config: Any, num_envs: int, episode_length: int) -> tuple[()]:
        """No carry."""
        return ()

    def end_episodes(
        self, config: Any, carry: Any, done: jax.Array, lengths: jax.Array, env_steps: jax.Array
    ) -> Any:
        """The carry, unchanged."""
        return carry

    def evaluate(self, env: Env, action: jax.Array, obs: jax.Array) -> jax.Array:
        """The learner's action itself."""
        return action


class Plain(Memoryless):
    """The learner acts alone: its proposal is executed and stored, every step kept."""

    name: str = "plain"

    def act(self, x: StepInput, carry: Any, key: jax.Array) -> BehaviourStep:
        """executed = stored = proposal; keep every transition."""
        keep = jnp.ones(x.proposal.shape[:1], bool)
        return BehaviourStep(x.proposal, x.proposal, keep, carry, {})


PLAIN = Plain()
"""The plain behaviour: TD3 and SAC as published."""


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


def action_scale(env: Env) -> tuple[float, ...]:
    """The env's ``action_scale`` (physical units per normalised action unit: an env whose
    actions in [-1, 1] stand for ``[-s_i, s_i]`` declares ``s``), ones if it declares none."""
    scale = tuple(float(s) for s in getattr(env, "action_scale", (1.0,) * env.action_size))
    if len(scale) != env.action_size or min(scale) <= 0:
        raise RlxError(
            f"{type(env).__name__}.action_scale must hold {env.action_size} positive numbers, "
            f"got {scale}."
        )
    return scale


def certifier(learner: Learner, state: Any, config: Any) -> Certify:
    """``certify(obs, action)``: the learner's certificate under its current state."""

    def certify(obs: jax.Array, action: jax.Array) -> jax.Array:
        return learner.certify(state, obs, action, config)

    return certify


def init(
    learner: Learner,
    behaviour: Behaviour,
    key: jax.Array,
    env: Env,
    config: Any,
    assets: Assets = None,
) -> OffPolicyState:
    """Learner state, an empty replay ring, a batch of reset environments, the behaviour's carry."""
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
        learner=learner.init(k_learner, obs_size, env.action_size, config, action_scale(env)),
        buffer=replay.init(example, config.capacity),
        env_state=training_env(env, config.episode_length).reset(
            jax.random.split(k_env, config.num_envs)
        ),
        behaviour=behaviour.init(config, config.num_envs, length),
        key=k_next,
        env_steps=jnp.zeros((), jnp.int32),
        update_step=jnp.zeros((), jnp.int32),
    )


def policy_params(learner: Learner, state: OffPolicyState) -> dict[str, Any]:
    """What the trained policy needs: the learner's actor (`Learner.policy_params`) alone."""
    return {"actor": learner.policy_params(state.learner)}


def make_policy(
    learner: Learner, behaviour: Behaviour, params: dict[str, Any], env: Env, config: Any
) -> Callable[..., jax.Array]:
    """act(obs, key, deterministic=False): the trained actor under the behaviour's
    `Behaviour.evaluate` (no arbitration; residual RL adds the env's baseline)."""

    def act(obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        if deterministic:
            a = learner.act(params["actor"], obs, env.action_size, config)
        else:
            a = learner.explore(params["actor"], obs, key, env.action_size, config)
        return behaviour.evaluate(env, a, obs)

    return act


def propose(
    learner: Learner,
    state: OffPolicyState,
    obs: jax.Array,
    env_steps: jax.Array,
    action_size: int,
    k_explore: jax.Array,
    k_uniform: jax.Array,
) -> jax.Array:
    """The learner's proposal ``[N, A]`` at one env step: a ~ U[-1, 1]^A while
    ``env_steps < learning_starts``, else a sample of its exploring policy
    (`Learner.explore` of its `Learner.policy_params`)."""
    config = state.config
    return jnp.where(
        env_steps < config.learning_starts,
        jax.random.uniform(k_uniform, (config.num_envs, action_size), jnp.float32, -1.0, 1.0),
        learner.explore(learner.policy_params(state.learner), obs, k_explore, action_size, config),
    )


def rollout(
    learner: Learner, behaviour: Behaviour, env: Env, state: OffPolicyState, key: jax.Array
) -> tuple[tuple[State, Any, jax.Array], tuple[Transition, jax.Array, jax.Array, dict, dict]]:
    """``unroll_length`` env steps of every env under the behaviour: at each, the learner's
    `propose`al, the behaviour's `Behaviour.act` (given the `certifier`), the env step with its
    executed action, and the stored `Transition` (next_obs the state before any auto-reset,
    terminal = done * (1 - truncation)). Returns the final (env state, behaviour carry, env
    steps) and per-step ``[T, N]`` (transitions, keep mask, done, episode ends, behaviour
    metrics ``[T]``)."""
    config = state.config
    tenv = training_env(env, config.episode_length)
    outcomes = outcome_metrics(env)
    certify = certifier(learner, state.learner, config)

    def _env_step(carry, step_key):
        env_state, b_carry, env_steps = carry
        k_explore, k_uniform, k_behave = jax.random.split(step_key, 3)
        obs = env_state.obs
        proposal = propose(learner, state, obs, env_steps, env.action_size, k_explore, k_uniform)
        base = env.baseline_policy(obs) if behaviour.needs_baseline else None
        step = behaviour.act(
            StepInput(config, obs, proposal, base, env_steps, certify), b_carry, k_behave
        )
        nxt = tenv.step(env_state, step.executed)
        env_steps = env_steps + config.num_envs
        b_carry = behaviour.end_episodes(config, step.carry, nxt.done, nxt.info["steps"], env_steps)
        transition = Transition(
            obs=obs,
            action=step.stored,
            reward=nxt.reward,
            terminal=nxt.done * (1.0 - nxt.info["truncation"]),
            next_obs=nxt.info["final_obs"],
        )
        ends = episode_end(nxt, outcomes)
        return (nxt, b_carry, env_steps), (transition, step.keep, nxt.done, ends, step.metrics)

    carry = (state.env_state, state.behaviour, state.env_steps)
    return jax.lax.scan(_env_step, carry, jax.random.split(key, config.unroll_length))


def learn(
    learner: Learner,
    state: OffPolicyState,
    buffer: replay.Buffer,
    active: jax.Array,
    key: jax.Array,
) -> tuple[Any, dict[str, jax.Array]]:
    """``grad_steps`` learner steps in groups of `Learner.group_size` (`Learner.learn` once per
    group), each group on ``group_size`` fresh replay batches of ``batch_size`` rows drawn
    uniformly; the old learner state (and zero metrics) where not ``active``."""
    config = state.config
    group = learner.group_size(config)

    def _group(ls, group_key):
        k_sample, k_learn = jax.random.split(group_key)
        batch = replay.sample(buffer, k_sample, group * config.batch_size)
        batch = jax.tree.map(lambda x: x.reshape((group, config.batch_size, *x.shape[1:])), batch)
        return learner.learn(ls, batch, k_learn, config)

    new, info = jax.lax.scan(
        _group, state.learner, jax.random.split(key, config.grad_steps // group)
    )
    kept = jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state.learner)
    return kept, {k: jnp.where(active, v.mean(), 0.0) for k, v in info.items()}


def update(
    learner: Learner, behaviour: Behaviour, env: Env, state: OffPolicyState, assets: Assets = None
) -> tuple[OffPolicyState, dict[str, jax.Array]]:
    """One iteration: unroll_length env steps of every env, then grad_steps learner steps."""
    config = state.config
    key, k_roll, k_learn = jax.random.split(state.key, 3)
    (env_state, b_carry, env_steps), (traj, keep, done, ends, b_metrics) = rollout(
        learner, behaviour, env, state, k_roll
    )
    chex.assert_shape(traj.reward, (config.unroll_length, config.num_envs))
    flat = jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), traj)
    buffer = replay.add(state.buffer, flat, keep.reshape(-1))
    active = (env_steps >= config.learning_starts) & (buffer.size >= config.batch_size)
    learner_state, metrics = learn(learner, state, buffer, active, k_learn)
    metrics.update(episode_summary(done, ends))
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


def check_env(name: str, behaviour: Behaviour, env: Env, config: Any) -> None:
    """Refuses environments the behaviour cannot run on (no baseline controller)."""
    if behaviour.needs_baseline:
        require_baseline(env, name)


def assemble(
    name: str, description: str, config_cls: type, learner: Learner, behaviour: Behaviour
) -> Algorithm:
    """The algorithm record of `learner` run under `behaviour`, with config class `config_cls`."""
    return Algorithm(
        name=name,
        description=description,
        Config=config_cls,
        init=functools.partial(init, learner, behaviour),
        update=functools.partial(update, learner, behaviour),
        policy_params=functools.partial(policy_params, learner),
        make_policy=functools.partial(make_policy, learner, behaviour),
        check_env=functools.partial(check_env, name, behaviour),
        metric_rules=lambda env: {**env_episode_rules(env), **behaviour.metric_rules},
    )
