"""MuJoCo Playground environments as `brax.envs.base.Env`, named ``playground:<Name>``.

Playground (the ``playground`` package, ``mujoco_playground``) is the environment suite that
replaced Brax's own. Its environments are ``MjxEnv`` objects whose ``State`` holds the physics in
``data`` where Brax's holds it in ``pipeline_state``; `PlaygroundEnv` converts between the two
so that rlx's training wrappers, learners and evaluation run them unchanged. Physics run on
MJX's JAX implementation (``impl="jax"``), never on Warp, so they need no GPU and jit together
with the learner.

Episode length and action repeat come from the environment's own default config (1,000 control
steps and 1 for every DM Control Suite port). Playground's DM Control ports end an episode early
(``done = 1``) only when the physics produce NaN: those are terminations; hitting the episode
limit is a time-out (``truncation``), kept distinct by rlx's episode wrapper.

Available: the DM Control Suite ports whose models ship inside the wheel (`DMC_TASKS`).
Unavailable, with the reason `make` reports: the locomotion and manipulation tasks, whose loaders
download robot models (MuJoCo Menagerie) at run time, and the reacher ports, whose loader calls
``MjSpec.find_body``, absent from the MuJoCo release rlx pins.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
from brax.envs.base import Env, State

from rlx.errors import RlxError, unknown

PREFIX = "playground:"

DMC_TASKS: dict[str, str] = {
    "AcrobotSwingup": "Two-link acrobot swing-up, 1-D action (Playground DMC).",
    "AcrobotSwingupSparse": "Acrobot swing-up, sparse reward (Playground DMC).",
    "BallInCup": "Swing a ball into a cup, 2-D action (Playground DMC).",
    "CartpoleBalance": "Cart-pole balance from near upright, 1-D action (Playground DMC).",
    "CartpoleBalanceSparse": "Cart-pole balance, sparse reward (Playground DMC).",
    "CartpoleSwingup": "Cart-pole swing-up, 1-D action (Playground DMC); baseline controller.",
    "CartpoleSwingupSparse": "Cart-pole swing-up, sparse reward (Playground DMC).",
    "CheetahRun": "Planar cheetah running, 6-D action (Playground DMC).",
    "FingerSpin": "Spin a hinged body with a finger, 2-D action (Playground DMC).",
    "FingerTurnEasy": "Turn a body to a target angle, 2-D action (Playground DMC).",
    "FingerTurnHard": "Turn a body to a small target, 2-D action (Playground DMC).",
    "FishSwim": "Fish swimming to a target, 5-D action (Playground DMC).",
    "HopperHop": "Planar hopper hopping forwards, 4-D action (Playground DMC).",
    "HopperStand": "Planar hopper standing up, 4-D action (Playground DMC).",
    "HumanoidStand": "Humanoid standing, 21-D action (Playground DMC).",
    "HumanoidWalk": "Humanoid walking, 21-D action (Playground DMC).",
    "HumanoidRun": "Humanoid running, 21-D action (Playground DMC).",
    "PendulumSwingup": "Torque-limited pendulum swing-up (Playground DMC); baseline controller.",
    "PointMass": "Planar point mass to the origin, 2-D action (Playground DMC).",
    "SwimmerSwimmer6": "Six-link swimmer to a target, 5-D action (Playground DMC).",
    "WalkerRun": "Planar walker running, 6-D action (Playground DMC).",
    "WalkerStand": "Planar walker standing, 6-D action (Playground DMC).",
    "WalkerWalk": "Planar walker walking, 6-D action (Playground DMC).",
}

BROKEN: dict[str, str] = {
    name: "its loader calls MjSpec.find_body, which the pinned MuJoCo (3.17) no longer has"
    for name in ("ReacherEasy", "ReacherHard")
}
DOWNLOAD = "its loader downloads robot models (MuJoCo Menagerie) at run time; unavailable offline"

# Tasks given a hand-made baseline controller and goal set by rlx.envs.playground_tasks.
_BASELINES: dict[str, str] = {
    "CartpoleSwingup": "CartpoleSwingupBaseline",
    "PendulumSwingup": "PendulumSwingupBaseline",
}


def names() -> dict[str, str]:
    """Every available ``playground:<Name>`` with its one-line description."""
    return {PREFIX + name: desc for name, desc in DMC_TASKS.items()}


@functools.cache
def _registry():
    """Playground's registry module (imported on first use: it takes seconds)."""
    from mujoco_playground import registry

    return registry


def downloading_tasks() -> tuple[str, ...]:
    """Playground's locomotion and manipulation task names (their loaders download models)."""
    reg = _registry()
    return (*reg.locomotion.ALL_ENVS, *reg.manipulation.ALL_ENVS)


def unavailable() -> dict[str, str]:
    """Every Playground task rlx cannot build here, with the reason."""
    return {**BROKEN, **{name: DOWNLOAD for name in downloading_tasks()}}


def check_name(name: str) -> str:
    """The Playground task of ``playground:<Name>``; RlxError if it is unknown or unavailable."""
    task = name.removeprefix(PREFIX)
    if task in DMC_TASKS:
        return task
    if task in BROKEN:
        raise RlxError(f"environment {name!r} is unavailable: {BROKEN[task]}.")
    if task in downloading_tasks():
        raise RlxError(f"environment {name!r} is unavailable: {DOWNLOAD}.")
    raise unknown("environment", name, names())


def make(name: str, **overrides: Any) -> Env:
    """Builds ``playground:<Name>`` on MJX's JAX implementation; keywords override entries of
    the task's Playground config (``ctrl_dt``, ``sim_dt``, ...). Tasks with a hand-made
    baseline come with it (`rlx.envs.playground_tasks`)."""
    task = check_name(name)
    reg = _registry()
    config = reg.get_default_config(task)
    if overrides.get("impl", "jax") != "jax":
        raise RlxError(
            f"environment {name!r} runs on MJX's JAX implementation only (impl='jax', which "
            f"jits with the learner on any device), got impl={overrides['impl']!r}."
        )
    bad = sorted(set(overrides) - set(config.keys()))
    if bad:
        raise RlxError(
            f"bad keyword(s) {', '.join(bad)} for environment {name!r}; "
            f"its config has: {', '.join(sorted(config.keys()))}."
        )
    env = PlaygroundEnv(task, reg.load(task, config_overrides={**overrides, "impl": "jax"}))
    if task in _BASELINES:
        from rlx.envs import playground_tasks

        env = getattr(playground_tasks, _BASELINES[task])(env)
    return env


class PlaygroundEnv(Env):
    """A Playground ``MjxEnv`` seen as a Brax ``Env`` (``pipeline_state`` is its ``mjx.Data``).

    ``episode_length`` and ``action_repeat`` are the task config's; ``resample_resets = False``
    tells rlx's auto-reset to restart finished episodes from their first initial state, as
    Brax's and Playground's training wrappers do (an MJX reset costs a forward pass).
    """

    resample_resets = False

    def __init__(self, task: str, env: Any):
        self.task = task
        self.mjx_env = env
        config = env._config
        self.episode_length = int(config.episode_length)
        self.action_repeat = int(config.get("action_repeat", 1))

    @property
    def observation_size(self) -> int:
        """Width of the (flat) observation."""
        size = self.mjx_env.observation_size
        if not isinstance(size, int):
            raise RlxError(f"Playground task {self.task!r} has a structured observation {size}.")
        return size

    @property
    def action_size(self) -> int:
        """Width of the action (the actuators' controls, in [-1, 1] for the DMC ports)."""
        return int(self.mjx_env.action_size)

    @property
    def backend(self) -> str:
        """Physics implementation: MJX's JAX one."""
        return "mjx"

    @property
    def dt(self) -> float:
        """Control timestep in seconds."""
        return float(self.mjx_env.dt)

    @property
    def mj_model(self):
        """The task's MuJoCo model (for linearisation by baseline controllers)."""
        return self.mjx_env.mj_model

    @property
    def n_substeps(self) -> int:
        """Physics steps per control step."""
        return int(self.mjx_env.n_substeps)

    def reset(self, rng: jax.Array) -> State:
        """Playground's reset, as a Brax State."""
        return _to_brax(self.mjx_env.reset(rng))

    def step(self, state: State, action: jax.Array) -> State:
        """Playground's step on the physics in ``state.pipeline_state``."""
        return _to_brax(self.mjx_env.step(_to_playground(state), action))


def _to_brax(s) -> State:
    """Playground State -> Brax State (same fields; ``data`` becomes ``pipeline_state``)."""
    return State(pipeline_state=s.data, obs=s.obs, reward=s.reward, done=s.done,
                 metrics=s.metrics, info=s.info)  # fmt: skip


def _to_playground(s: State):
    """Brax State -> Playground State."""
    from mujoco_playground._src.mjx_env import State as PState

    return PState(data=s.pipeline_state, obs=s.obs, reward=s.reward, done=s.done,
                  metrics=s.metrics, info=s.info)  # fmt: skip
