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
  steps.
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


SQUEEZE_VERSION = 2
# Per env: demonstration episodes, their action noise and bc's gradient steps, chosen so the
# SFT policy's success lands in the range of HABC's SFT baselines (12-44%). Pure JAX: 25%, 42%
# and 12% over 1,024 evaluation episodes at seed 0 (assets built since 164db13, whose unbatched
# one-run programs round bc's training differently; 22/38/16% before; at noise 0.3 only 3% of
# level 3's demonstrations succeed and its SFT policy never does). MJX: 20%, 35% and 14% over
# 256; 18%, 39% and 17% over 8 x 64 in the CPU sweeps' SFT cells (results/habc_mjx_cpu*).
SQUEEZE_SFT: dict[str, tuple[int, float, int]] = {
    "squeeze_lift_l1": (4, 0.3, 5_000),
    "squeeze_lift_l2": (48, 0.1, 5_000),
    "squeeze_lift_l3": (96, 0.1, 20_000),
    "squeeze_lift_mjx_l1": (8, 0.3, 5_000),
    "squeeze_lift_mjx_l2": (16, 0.3, 5_000),
    "squeeze_lift_mjx_l3": (16, 0.1, 5_000),
}


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
