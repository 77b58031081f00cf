"""Trajectory datasets of goal-conditioned envs: the ``"dataset"`` asset of offline GCRL.

On disk a dataset is a directory in OGBench's layout, so OGBench's own loaders read it::

    <dir>/<name>.npz        training split: rows of `rlx.data.datasets.FIELDS` (observations,
                            actions, terminals, next_observations, rewards, masks), episodes
                            one after another, terminals = 1 at each episode's last row
    <dir>/<name>-val.npz    validation split, same fields (OGBench: a tenth of the episodes)
    <dir>/dataset.json      what made it (recipe, maze, episodes, steps, noise, seed, rlx
                            revision) and the two file names

A single ``.npz`` file also loads (an OGBench download, say), with ``<stem>-val.npz`` beside
it as the validation split when present. Observations are the env's *state* part
(`rlx.envs.goals.GoalLayout.state_size`; goals are relabelled from the data).

`load` returns the arrays the learners sample from (`Trajectories` as a dict): the training
fields, ``valid`` (the rows that are not an episode's last, from which a transition and a later
goal in the same episode can be drawn), ``traj_end`` (each row's episode's last row) and
``val_observations``, ``val_actions`` and ``val_traj_end`` (the validation split's states,
actions and episode ends; possibly empty: the value read-outs score held-out pairs from them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from brax.envs.base import Env

from rlx.data.assets import AssetSpec
from rlx.data.datasets import FIELDS, check_widths, load_dataset, save_npz
from rlx.envs.goals import require_goal_layout
from rlx.errors import RlxError
from rlx.files import atomic_directory

META = "dataset.json"


def files(path: Path) -> tuple[Path, Path | None]:
    """(training file, validation file or None) of a dataset directory or ``.npz`` file."""
    if path.is_dir():
        meta_path = path / META
        if not meta_path.is_file():
            raise RlxError(f"{str(path)!r} is a directory without {META} (not an rlx dataset).")
        try:
            meta = json.loads(meta_path.read_text())
            train, val = path / meta["train"], meta.get("val")
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise RlxError(f"{str(meta_path)!r} is not a dataset description: {err}.") from None
        return train, (path / val if val else None)
    if path.suffix != ".npz":
        raise RlxError(f"a dataset is a directory or an .npz file, got {str(path)!r}.")
    val = path.with_name(f"{path.stem}-val.npz")
    return path, (val if val.is_file() else None)


def trajectory_ends(terminals: np.ndarray) -> np.ndarray:
    """For every row, the index of its episode's last row (terminals mark last rows; rows after
    the final terminal belong to an episode cut at the end of the data).

    >>> trajectory_ends(np.array([0, 0, 1, 0, 1.0])).tolist()
    [2, 2, 2, 4, 4]
    """
    ends = np.nonzero(terminals > 0)[0]
    n = len(terminals)
    if len(ends) == 0 or ends[-1] != n - 1:
        ends = np.append(ends, n - 1)
    return ends[np.searchsorted(ends, np.arange(n))].astype(np.int32)


def arrays(
    train: Mapping[str, np.ndarray], val_observations: np.ndarray | None,
    val: Mapping[str, np.ndarray] | None = None,
) -> dict:  # fmt: skip
    """The sampling arrays of a training split (the fields of `rlx.data.datasets.FIELDS`) and
    optional validation states: the fields plus ``valid``, ``traj_end``, ``val_observations``,
    and, from the validation split `val` when given, ``val_actions`` and ``val_traj_end``
    (empty otherwise); raises RlxError if every episode is one row long."""
    ends = trajectory_ends(np.asarray(train["terminals"]))
    valid = np.nonzero(np.arange(len(ends)) < ends)[0].astype(np.int32)
    if len(valid) == 0:
        raise RlxError("every episode of the dataset is one row long; nothing to sample.")
    obs = np.asarray(train["observations"], np.float32)
    if val_observations is None:
        val_observations = np.zeros((0, obs.shape[1]), np.float32)
    actions = np.asarray(train["actions"], np.float32)
    if val is None or len(val["actions"]) != len(val_observations):
        val_actions = np.zeros((0, actions.shape[1]), np.float32)
        val_ends = np.zeros((0,), np.int32)
    else:
        val_actions = np.asarray(val["actions"], np.float32)
        val_ends = trajectory_ends(np.asarray(val["terminals"]))
    return {**{k: np.asarray(v, np.float32) for k, v in train.items()}, "valid": valid,
            "traj_end": ends, "val_observations": np.asarray(val_observations, np.float32),
            "val_actions": val_actions, "val_traj_end": val_ends}  # fmt: skip


def load(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a trajectory dataset (see the module docstring); raises RlxError for a
    missing, unreadable or malformed file or an episode of one row only."""
    train_path, val_path = files(path)
    if not train_path.is_file():
        raise RlxError(f"dataset file {str(train_path)!r} does not exist.")
    train = load_dataset(train_path)
    val = load_dataset(val_path) if val_path else None
    try:
        return arrays(train, val["observations"] if val else None, val)
    except RlxError as err:
        raise RlxError(f"{str(train_path)!r}: {err}") from None


def check(data: Mapping[str, np.ndarray], env: Env, config: Any) -> None:
    """Raises RlxError unless the dataset's states and actions have the env's widths (states:
    the state part of the env's goal-conditioned observation)."""
    layout = require_goal_layout(env, "an offline goal-conditioned algorithm")
    check_widths(data, env, {"observations": ("state", layout.state_size),
                             "val_observations": ("state", layout.state_size),
                             "actions": ("action", env.action_size),
                             "val_actions": ("action", env.action_size)})  # fmt: skip


DATASET = AssetSpec(
    doc=(
        "goal-conditioned trajectory dataset: a directory made by `rlx dataset make` (OGBench "
        "layout: <name>.npz, <name>-val.npz, dataset.json) or an OGBench .npz file"
    ),
    load=load,
    check=check,
)
"""The ``"dataset"`` asset of the offline goal-conditioned algorithms."""


def write(
    out: Path, name: str, train: Mapping[str, np.ndarray], val: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
) -> Path:  # fmt: skip
    """Writes a dataset directory (the module docstring's layout) at `out` atomically
    (`rlx.files.atomic_directory`: a temporary sibling renamed when complete)."""
    for split, data in (("train", train), ("val", val)):
        missing = [f for f in FIELDS if f not in data]
        if missing:
            raise ValueError(f"{split} split lacks {missing}")
    info = {**meta, "train": f"{name}.npz", "val": f"{name}-val.npz",
            "rows": {"train": len(train["actions"]), "val": len(val["actions"])}}  # fmt: skip
    with atomic_directory(out) as tmp:
        save_npz(tmp / f"{name}.npz", train)
        save_npz(tmp / f"{name}-val.npz", val)
        (tmp / META).write_text(json.dumps(info, indent=1, sort_keys=True))
    return out
