"""Trajectory datasets: collect transitions from an env under a policy, write them, read them back.

A dataset is a flat table of transitions in OGBench's field names, every field with one
leading length ``N``, episodes stored one after another in time order::

    observations       [N, obs]   s_t
    actions            [N, act]   a_t (what was executed, in [-1, 1])
    next_observations  [N, obs]   s_{t+1}, the state reached *before* any reset
    rewards            [N]        r_t
    terminals          [N]        1.0 at the last step of each stored episode (a termination, the
                                  time limit, or the end of the collection window), else 0.0
    masks              [N]        1 - termination: 0.0 only where the env *terminated* (no
                                  bootstrap from s_{t+1}), 1.0 at time-outs and cuts

(``masks`` is OGBench's field for ``1 - done * (1 - truncation)``, the ``termination`` of
`rlx.algos.offpolicy.common.Transition`; value-based offline learners need it, behaviour cloning does not.)

`collect` is pure and jittable; `collect_baseline_dataset` runs it on an env's hand-made
controller and returns numpy arrays; `save_npz` writes them atomically; `DATASET` is the
`rlx.data.assets.AssetSpec` through which an algorithm reads such a file as its ``"dataset"`` asset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State

from rlx.data.assets import AssetSpec, load_npz
from rlx.envs import episode_length as default_episode_length
from rlx.envs import has_baseline, make, observation_size, training_env
from rlx.errors import RlxError, positive_size
from rlx.files import atomic_file

FIELDS: dict[str, int] = {
    "observations": 2,
    "actions": 2,
    "next_observations": 2,
    "rewards": 1,
    "terminals": 1,
    "masks": 1,
}
"""Every field of a dataset file with its number of dimensions."""

Act = Callable[[jax.Array, jax.Array, bool], jax.Array]
"""``act(obs, key, deterministic) -> action`` for one observation."""


def noisy_action(
    act: Act, obs: jax.Array, key: jax.Array, noise: jax.Array, deterministic: bool
) -> jax.Array:
    """a = clip(act(s) + noise * eps, -1, 1) with eps ~ N(0, I): the policy's action with
    Gaussian exploration noise of standard deviation `noise`."""
    k_act, k_noise = jax.random.split(key)
    action = act(obs, k_act, deterministic)
    eps = jax.random.normal(k_noise, action.shape, action.dtype)
    return jnp.clip(action + noise * eps, -1.0, 1.0)


def collect(
    env: Env,
    act: Act,
    key: jax.Array,
    episodes: int,
    episode_length: int,
    noise: float | jax.Array = 0.0,
    deterministic: bool = True,
) -> dict[str, jax.Array]:
    """``episodes x episode_length`` transitions of `env` under `act` with Gaussian action noise
    (`noisy_action`), as the fields of `FIELDS` with ``N = episodes * episode_length``.

    `episodes` envs run side by side for `episode_length` steps each under a time limit of
    `episode_length` (so each window is one episode unless the env terminates early; then it
    resets and the window holds several). Rows are ordered episode-window by episode-window, in
    time order within each. Pure and jittable (`key` and `noise` may be traced).
    """
    tenv = training_env(env, episode_length)
    k_reset, k_steps = jax.random.split(key)

    def _env_step(env_state: State, step_key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
        keys = jax.random.split(step_key, episodes)
        action = jax.vmap(lambda o, k: noisy_action(act, o, k, noise, deterministic))(
            env_state.obs, keys
        )
        nxt = tenv.step(env_state, action)
        termination = nxt.done * (1.0 - nxt.info["truncation"])
        return nxt, {
            "observations": env_state.obs,
            "actions": action,
            "next_observations": nxt.info["final_obs"],
            "rewards": nxt.reward,
            "terminals": nxt.done,
            "masks": 1.0 - termination,
        }

    first = tenv.reset(jax.random.split(k_reset, episodes))
    _, steps = jax.lax.scan(_env_step, first, jax.random.split(k_steps, episode_length))
    # The window's last step ends a stored episode, whatever the env's own done flag says.
    steps["terminals"] = steps["terminals"].at[-1].set(1.0)
    return {name: _episode_major(x) for name, x in steps.items()}


def _episode_major(x: jax.Array) -> jax.Array:
    """[T, E, ...] (time-major scan output) -> [E * T, ...] with each episode's rows contiguous."""
    x = jnp.swapaxes(x, 0, 1).astype(jnp.float32)
    return x.reshape((-1, *x.shape[2:]))


def collect_baseline_dataset(
    env_name: str, episodes: int, episode_length: int = 0, noise: float = 0.0, seed: int = 0
) -> dict[str, np.ndarray]:
    """A dataset of `env_name`'s hand-made controller ``baseline_policy`` with Gaussian action
    noise of standard deviation `noise` (clipped to [-1, 1]): `episodes` episodes of
    `episode_length` steps (0: the env's default length), drawn from ``PRNGKey(seed)``.

    Raises RlxError for an env without a controller or bad sizes.
    """
    env = make(env_name)
    if not has_baseline(env):
        raise RlxError(f"environment {env_name!r} has no baseline controller (baseline_policy).")
    episodes = positive_size("episodes", episodes)
    length = positive_size("episode_length", episode_length or default_episode_length(env))
    if not np.isfinite(noise) or noise < 0:
        raise RlxError(f"noise must be a finite standard deviation >= 0, got {noise!r}.")

    def act(obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        return env.baseline_policy(obs)

    run = jax.jit(lambda key, sigma: collect(env, act, key, episodes, length, sigma))
    data = run(jax.random.PRNGKey(seed), jnp.float32(noise))
    return {name: np.asarray(x) for name, x in data.items()}


def save_npz(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Writes the arrays `data` to the ``.npz`` file `path` atomically (a temporary file in the
    same directory, then a rename), so a reader never sees a half-written dataset; returns the
    path. Arrays are stored uncompressed as given."""
    path = Path(path)
    with atomic_file(path) as out:
        np.savez(out, **{name: np.asarray(x) for name, x in data.items()})
    return path


def write_baseline_dataset(
    out: str | Path,
    env_name: str,
    episodes: int,
    episode_length: int = 0,
    noise: float = 0.0,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, np.ndarray]:
    """``rlx dataset collect``: `collect_baseline_dataset` written to the ``.npz`` file `out`
    with `save_npz` (refused where it exists, unless `overwrite`); returns the arrays."""
    from rlx.files import check_new

    out = Path(out)
    if out.suffix != ".npz":
        raise RlxError(f"--out must name an .npz file, got {str(out)!r}.")
    check_new(out, overwrite)
    data = collect_baseline_dataset(env_name, episodes, episode_length, noise, seed)
    save_npz(out, data)
    return data


def load_dataset(path: Path) -> dict[str, np.ndarray]:
    """The fields of `FIELDS` from a dataset file, float32, with one common length; raises
    RlxError naming the file and the problem (unreadable, a field missing or misshapen, widths
    of observations and next_observations that differ, non-finite values)."""
    data = load_npz(path, FIELDS)
    obs, next_obs = data["observations"].shape, data["next_observations"].shape
    if obs != next_obs:
        raise RlxError(
            f"{str(path)!r}: observations {obs} and next_observations {next_obs} differ in shape."
        )
    bad = [name for name, x in data.items() if not np.isfinite(x).all()]
    if bad:
        raise RlxError(f"{str(path)!r}: non-finite values in {', '.join(bad)}.")
    return data


def check_widths(
    data: Mapping[str, np.ndarray], env: Env, want: Mapping[str, tuple[str, int]]
) -> None:
    """Raises RlxError for the first field whose last dimension is not its width:
    ``want[field] = (kind, width)``, e.g. ``{"actions": ("action", 2)}``."""
    for field, (kind, width) in want.items():
        shape = tuple(data[field].shape)
        if shape[-1] != width:
            raise RlxError(
                f"dataset {field} have shape {shape}, but {type(env).__name__}'s {kind} width "
                f"is {width} (expected shape ({shape[0]}, {width}))."
            )


def check_dataset(data: Mapping[str, np.ndarray], env: Env, config: Any) -> None:
    """Raises RlxError unless the dataset's observation and action widths are the env's."""
    check_widths(data, env, {"observations": ("observation", observation_size(env)),
                             "actions": ("action", env.action_size)})  # fmt: skip


DATASET = AssetSpec(
    doc=(
        "trajectory dataset: .npz with observations [N, obs], actions [N, act], "
        "next_observations [N, obs], rewards, terminals, masks [N] (rlx.data.datasets)"
    ),
    load=load_dataset,
    check=check_dataset,
)
"""The ``"dataset"`` asset of offline algorithms."""
