"""The asset recipes of rlx's environments (the mechanism: `rlx.data.recipes`).

- ``pointmaze-<maze>-navigate``: OGBench's navigate dataset of the maze
  (`rlx.envs.pointmaze_data`), written as a dataset directory (`rlx.data.trajectories`): 1,000
  training episodes of 1,001 steps (giant: 500 of 2,001) plus a tenth as the validation split,
  noise 0.5; ``episodes``, ``steps`` and ``noise`` can be changed (smaller data for tests).
- ``pointmaze-<maze>-distances``: the maze's exact step-distance table
  (`rlx.envs.maze_distance`), an ``.npz`` file.
- ``squeeze-lift-l<N>-demos`` (``squeeze-lift-mjx-l<N>-demos`` on MJX): demonstrations of the
  scripted expert of ``squeeze_lift_l<N>`` with Gaussian action noise (failures mixed in), an
  ``.npz`` dataset (`rlx.data.datasets`); ``episodes`` and ``noise`` can be changed.
- ``squeeze-lift-l<N>-sft`` (``squeeze-lift-mjx-l<N>-sft``): the supervised (behaviour-cloned)
  policy HABC fine-tunes: ``bc`` trained on those demonstrations, a policy artifact directory
  (`rlx.policy`); ``episodes`` and ``noise`` choose the demonstrations, ``steps`` the gradient
  steps. Each task shares one noise and one step count over its levels (`SQUEEZE_TASK_SFT`);
  the number of demonstration episodes is the one knob per level (`SQUEEZE_EPISODES`: 2/2/48
  pure JAX, SFT success 29/25/28% on average over asset seeds 0-3, per seed 18-48/21-29/24-36%;
  MJX 8/16/16, not recalibrated). A sweep file picks an asset seed or other options as a table,
  ``{make = "squeeze-lift-l1-sft", seed = 1}`` (`rlx.sweep`).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from rlx.envs import maze_distance, pointmaze_data
from rlx.envs.maze import LAYOUTS, Maze

from rlx.data.recipes import Options, Recipe

NAVIGATE_VERSION = 2  # 2: MuJoCo contact friction; teleport rows in OGBench's step order
DISTANCES_VERSION = 1


def _navigate(maze: str):
    def build(out: Path, options: Options) -> None:
        from rlx import provenance
        from rlx.data import trajectories

        episodes, steps = pointmaze_data.SIZES[maze]
        episodes, steps = options.episodes or episodes, options.steps or steps
        noise = pointmaze_data.NOISE if options.noise is None else options.noise
        k_train, k_val = jax.random.split(jax.random.PRNGKey(options.seed))
        geometry = Maze.named(maze)
        train = pointmaze_data.navigate(geometry, k_train, episodes, steps, noise)
        val = pointmaze_data.navigate(geometry, k_val, max(1, episodes // 10), steps, noise)
        meta = {
            "recipe": f"pointmaze-{maze}-navigate", "version": NAVIGATE_VERSION, "maze": maze,
            "episodes": episodes, "val_episodes": max(1, episodes // 10), "steps": steps,
            "noise": noise, "seed": options.seed, "ogbench_name": f"pointmaze-{maze}-navigate-v0",
            "code": provenance.code_identity(provenance.provenance()),
        }  # fmt: skip
        trajectories.write(out, f"pointmaze-{maze}-navigate-v0", train, val, meta)

    return build


def _distances(maze: str):
    def build(out: Path, options: Options) -> None:
        from rlx.data.datasets import save_npz

        table = maze_distance.build(Maze.named(maze))
        save_npz(out, {**table, "version": np.array(DISTANCES_VERSION)})

    return build


SQUEEZE_VERSION = 3  # 3: one noise and step count per task, episodes the knob; solid box
SQUEEZE_TASK_SFT: dict[str, tuple[float, int]] = {
    "squeeze_lift": (0.1, 5_000),
    "squeeze_lift_mjx": (0.3, 5_000),
}
"""Per task (pure JAX, MJX): the demonstrations' action noise and bc's gradient steps, shared by
all its levels. Pure JAX: noise 0.1, because at 0.3 the level-3 expert rarely succeeds (3% of
demonstrations under version 2, and its SFT policy never did). MJX: 0.3, the noise its levels 1
and 2 were calibrated at (level 3 was at 0.1; at 0.3 it is not measured)."""
SQUEEZE_EPISODES: dict[str, int] = {
    "squeeze_lift_l1": 2,
    "squeeze_lift_l2": 2,
    "squeeze_lift_l3": 48,
    "squeeze_lift_mjx_l1": 8,
    "squeeze_lift_mjx_l2": 16,
    "squeeze_lift_mjx_l3": 16,
}
"""Per level, the one knob: the number of demonstration episodes (noise and steps from
`SQUEEZE_TASK_SFT`), chosen so the SFT policy's success sits low in HABC's SFT baselines' range
(12-44%), leaving fine-tuning room. Pure JAX (version 3, solid box), deterministic bc policy
over 256 initial states (reset keys 0-255), asset seeds 0/1/2/3: level 1 (2 episodes)
28/20/18/48%, mean 29%; level 2 (2) 27/25/29/21%, mean 25%; level 3 (48) 25/36/24/25%, mean 28%.
Of the first 64 initial states, 14/21/10 are solved by none of the four seeds' policies and
none is solved by all four. The knob is not monotone: level 1 with 1 episode averages 23%
and with 4 reaches 73% at seed 0; level 2 with 4, 34% (16-48%); level 3 with 32, 25% (11-46%),
with 64, 12% (5-19%), with 96, 23% at seed 0 (bc's 5,000 steps may underfit the larger sets).
MJX is not recalibrated (too slow on CPU): its counts are the version-2 ones (20/35/14% over
256 then, at noise 0.3/0.3/0.1), now all at 0.3, so level 3 is unmeasured; the normaliser's
std floor (`rlx.learn.normalizer.MIN_STD`) also moves every level's bc policy a little."""
SQUEEZE_SFT: dict[str, tuple[int, float, int]] = {
    env: (episodes, *SQUEEZE_TASK_SFT[env.rsplit("_l", 1)[0]])
    for env, episodes in SQUEEZE_EPISODES.items()
}
"""Per env: the SFT recipe's defaults (demonstration episodes, their noise, bc's steps)."""


def _squeeze_demos(env: str):
    def build(out: Path, options: Options) -> None:
        from rlx.data.datasets import collect_baseline_dataset, save_npz

        default_episodes, default_noise, _ = SQUEEZE_SFT[env]
        episodes = options.episodes or default_episodes
        noise = default_noise if options.noise is None else options.noise
        save_npz(out, collect_baseline_dataset(env, episodes, 0, noise, options.seed))

    return build


def _squeeze_sft(env: str):
    def build(out: Path, options: Options) -> None:
        import tempfile

        from rlx import api

        with tempfile.TemporaryDirectory() as tmp:
            demos = Path(tmp) / "demos.npz"
            _squeeze_demos(env)(demos, Options(options.seed, options.episodes, 0, options.noise))
            steps = options.steps or SQUEEZE_SFT[env][2]
            result = api.train(
                "bc", env, seeds=[options.seed], num_evals=1, overrides={"total_steps": steps},
                assets={"dataset": demos}, progress=False,
            )  # fmt: skip
            result.export_policy(out)

    return build


RECIPES: dict[str, Recipe] = {}
for _env in SQUEEZE_SFT:
    _name = _env.replace("_", "-")
    RECIPES[f"{_name}-demos"] = Recipe(
        f"{_name}-demos",
        f"noisy scripted-expert demonstrations of {_env} (.npz dataset)",
        _squeeze_demos(_env),
        SQUEEZE_VERSION,
        takes=("episodes", "noise"),
        suffix=".npz",
    )
    RECIPES[f"{_name}-sft"] = Recipe(
        f"{_name}-sft",
        f"bc policy of {_env} demonstrations (policy artifact for habc)",
        _squeeze_sft(_env),
        SQUEEZE_VERSION,
        takes=("episodes", "steps", "noise"),
    )
for _maze in LAYOUTS:
    RECIPES[f"pointmaze-{_maze}-navigate"] = Recipe(
        f"pointmaze-{_maze}-navigate",
        f"OGBench navigate dataset of the {_maze} point maze (noisy oracle), train + validation",
        _navigate(_maze),
        NAVIGATE_VERSION,
        takes=("episodes", "steps", "noise"),
    )
    RECIPES[f"pointmaze-{_maze}-distances"] = Recipe(
        f"pointmaze-{_maze}-distances",
        f"exact step distances of the {_maze} point maze (.npz table)",
        _distances(_maze),
        DISTANCES_VERSION,
        suffix=".npz",
    )
