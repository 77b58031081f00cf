"""OGBench's point maze as a pure-JAX Brax environment (geometry and dynamics: `rlx.envs.maze`).

State (``State.pipeline_state``, `MazeState`): the sphere's centre ``xy``, the episode's goal
and a PRNG key for the teleporters. One step moves ``xy += 0.2 clip(a)`` and resolves wall
contact (`rlx.envs.maze.Maze.move`). The teleport maze follows OGBench's ``MazeEnv.step``
order (`rlx.envs.maze.Maze.step`): the step's observation is the position the move reached
(the teleporter's entry side); then, if that position is within 1.5 of a teleporter, the state
moves to an out-cell centre, where the next step starts and where this step's success is
judged. The goal is reached when ``|xy - goal| <= GOAL_RADIUS = 1.0`` after the step (after
any teleport), which ends the episode with reward 1 (reward 0 otherwise). Episodes last at
most ``episode_length = 1000`` steps.

Two variants per maze:

- ``pointmaze_<maze>`` (`GoalPointMaze`): goal-conditioned. Observation ``(x, y, gx, gy)``
  (``goal_layout``: state ``(x, y)``, goal ``(gx, gy)``, the goal a state reaches is its
  ``(x, y)``). ``reset`` draws one of the five evaluation tasks uniformly; ``reset_task(key, t)``
  starts task ``t``; evaluation runs every task equally often (``num_tasks = 5``). Its baseline
  controller is OGBench's oracle (`rlx.envs.maze.Maze.oracle_direction`).
- ``pointmaze_<maze>_singletask`` (`PointMaze`): observation ``(x, y)``, one task (``task=1..5``,
  default 1), for online single-task RL.

Starts and goals are the task's cell centres plus ``U(-1, 1)^2`` (OGBench's ``add_noise``).
On a 2-core CPU a batch of 256 episodes steps at about 150k env steps/s (medium maze, inside
one ``lax.scan``; the contact dynamics are MuJoCo's, solved at every RK4 stage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State
from rlx.envs import maze_distance
from rlx.envs.drawing import fix_limits
from rlx.envs.goals import GoalLayout
from rlx.envs.maze import CELL, LAYOUTS, OFFSET, RADIUS, START_NOISE, TASKS, Maze, cell_xy

from rlx.errors import RlxError, unknown

if TYPE_CHECKING:
    from matplotlib.axes import Axes

GOAL_RADIUS = 1.0
"""Success: |xy - goal| <= GOAL_RADIUS, checked after the step (after any teleport)."""


@flax.struct.dataclass
class MazeState:
    """The physical state of a point-maze episode."""

    xy: jax.Array
    goal: jax.Array
    key: jax.Array


class PointMaze(Env):
    """One OGBench point-maze task; observation (x, y) (see the module docstring)."""

    episode_length: int = 1000
    num_tasks: int = 5
    metric_labels = {"goal_reached": "success"}  # noqa: RUF012

    def __init__(self, maze: str = "medium", task: int = 1):
        if maze not in LAYOUTS:
            raise unknown("maze", maze, LAYOUTS)
        if not isinstance(task, int) or isinstance(task, bool) or not 1 <= task <= self.num_tasks:
            raise RlxError(f"task must be an integer in 1..{self.num_tasks}, got {task!r}.")
        self.maze = Maze.named(maze)
        self.task = task
        tasks = np.array(TASKS[maze], dtype=np.int32)
        self._starts = cell_xy(tasks[:, 0])
        self._goals = cell_xy(tasks[:, 1])

    @property
    def observation_size(self) -> int:
        """(x, y)."""
        return 2

    @property
    def action_size(self) -> int:
        """A 2-D move, clipped to [-1, 1]^2."""
        return 2

    @property
    def backend(self) -> str:
        """Pure JAX."""
        return "jax"

    def _obs(self, ms: MazeState) -> jax.Array:
        return ms.xy

    def reset(self, rng: jax.Array) -> State:
        """Start the env's task (task `task`) from its start cell, noise added."""
        return self.reset_task(rng, jnp.int32(self.task - 1))

    def reset_task(self, rng: jax.Array, task: jax.Array) -> State:
        """Start task `task` (0-based, may be traced): start and goal cell centres plus
        U(-1, 1)^2 each."""
        k_start, k_goal, k_state = jax.random.split(rng, 3)
        noise = lambda k: jax.random.uniform(k, (2,), jnp.float32, -START_NOISE, START_NOISE)  # noqa: E731
        ms = MazeState(
            xy=jnp.asarray(self._starts)[task] + noise(k_start),
            goal=jnp.asarray(self._goals)[task] + noise(k_goal),
            key=k_state,
        )
        zero = jnp.zeros((), jnp.float32)
        return State(ms, self._obs(ms), zero, zero, {"goal_reached": zero}, {})

    def step(self, state: State, action: jax.Array) -> State:
        """Move and resolve contact; observe the position reached; teleport (teleport maze);
        then judge success at the position after the teleport (OGBench's order)."""
        ms = state.pipeline_state
        key, k_tele = jax.random.split(ms.key)
        reached, xy = self.maze.step(ms.xy, jnp.asarray(action, jnp.float32).reshape(2), k_tele)
        ms = ms.replace(xy=xy, key=key)
        success = (jnp.linalg.norm(xy - ms.goal) <= GOAL_RADIUS).astype(jnp.float32)
        return state.replace(
            pipeline_state=ms,
            obs=self._obs(ms.replace(xy=reached)),
            reward=success,
            done=success,
            metrics={**state.metrics, "goal_reached": success},
        )

    def draw(self, ax: Axes, states: MazeState, t: int) -> None:
        """Step `t` of a rollout: walls, the goal's success disc, the path so far and the
        sphere."""
        from matplotlib.patches import Circle, Rectangle

        rows, cols = self.maze.shape
        half = CELL / 2
        fix_limits(ax, (-OFFSET - half, CELL * (cols - 1) - OFFSET + half),
                   (-OFFSET - half, CELL * (rows - 1) - OFFSET + half))  # fmt: skip
        for i, j in np.argwhere(self.maze.walls == 1):
            x, y = cell_xy((i, j))
            ax.add_patch(Rectangle((x - half, y - half), CELL, CELL, color="0.35", lw=0))
        goal = np.asarray(states.goal[t])
        ax.add_patch(Circle(goal, GOAL_RADIUS, color="tab:green", alpha=0.4, zorder=2))
        xy = np.asarray(states.xy[: t + 1])
        ax.plot(xy[:, 0], xy[:, 1], color="tab:blue", lw=1.0, alpha=0.6, zorder=3)
        ax.add_patch(Circle(xy[-1], RADIUS, color="tab:blue", zorder=4))


class GoalPointMaze(PointMaze):
    """The goal-conditioned point maze: observation (x, y, gx, gy), tasks drawn at reset,
    OGBench's oracle as the baseline controller (see the module docstring)."""

    goal_layout = GoalLayout(state_size=2, goal_size=2, goal_indices=(0, 1))

    def __init__(self, maze: str = "medium"):
        super().__init__(maze)

    @property
    def observation_size(self) -> int:
        """(x, y, gx, gy)."""
        return 4

    def _obs(self, ms: MazeState) -> jax.Array:
        return jnp.concatenate([ms.xy, ms.goal])

    def reset(self, rng: jax.Array) -> State:
        """Start one of the five tasks, drawn uniformly."""
        k_task, k_reset = jax.random.split(rng)
        return self.reset_task(k_reset, jax.random.randint(k_task, (), 0, self.num_tasks))

    def exact_distance(self, tables: dict, state: jax.Array, goal: jax.Array) -> jax.Array:
        """Fewest env steps from state (x, y) to goal (x, y), from the maze's distance table
        (`rlx.envs.maze_distance`; walking distance in the teleport maze)."""
        return maze_distance.distance(tables, state[..., :2], goal)

    def check_distance_table(self, tables: dict) -> None:
        """Raises RlxError unless `tables` is this maze's distance table."""
        walls = tables.get("walls")
        if walls is None or int(tables.get("format", -1)) != maze_distance.FORMAT:
            raise RlxError("the distances asset is not an rlx maze distance table (format "
                           f"{maze_distance.FORMAT}); make one with `rlx dataset make "
                           f"pointmaze-{self.maze.name}-distances`.")  # fmt: skip
        if walls.shape != self.maze.walls.shape or not (walls == self.maze.walls).all():
            raise RlxError(f"the distances asset is the table of another maze (shape "
                           f"{walls.shape}), not of the {self.maze.name} maze "
                           f"{self.maze.walls.shape}.")  # fmt: skip

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """OGBench's oracle: the unit vector towards the next cell on a shortest cell path to
        the goal (no noise; `rlx dataset make` adds it)."""
        obs = jnp.asarray(obs, jnp.float32)
        return self.maze.oracle_direction(obs[..., :2], obs[..., 2:4])
