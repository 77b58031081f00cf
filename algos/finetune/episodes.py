"""Externally collected episodes for HABC: the ``.npz`` schema, its validation, load and save.

An episode file is a NumPy ``.npz`` archive (``np.savez``, no pickled objects) of E episodes
padded to T steps. Step t of episode e is valid while ``t < length[e]``; padding steps are
ignored (and zeroed on load). Fields::

    field         shape      dtype        meaning
    obs           [E, T, O]  float        observation s_t the actor saw
    next_obs      [E, T, O]  float        observation s_{t+1} after the action
    action        [E, T, A]  float        the action taken: the expert's on its steps, the
                                          policy's (its sample before any clipping) on its own
    reason        [E, T]     integer      who acted and why: 0 the policy acted; 1-4 the expert
                                          acted, having taken over for that reason (REASONS:
                                          1 danger, 2 low_viability, 3 random, 4 other)
    length        [E]        integer      valid steps, 1..T
    success       [E]        bool or 0/1  the episode's outcome (1: the task was solved)
    success_step  [E]        integer      optional: the step at which it succeeded (< length);
                                          -1 for a failure. Default: length - 1 for a success
    ret           [E]        float        optional: the episode's return (default: success)

An intervention *starts* at a step where the expert acts and did not act at the step before;
which take-overs stand for a failure (label the policy's preceding segment 0) is HABC's
``failure_reasons`` setting. `load_episodes` gives `rlx.algos.finetune.habc.Episodes`;
`save_episodes` writes the schema atomically (`rlx.files.atomic_file`); `validate` checks
arrays against it. Every problem is one `RlxError` naming the field, what it holds and what is
allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlx.errors import RlxError, unknown
from rlx.files import atomic_file

REQUIRED = ("obs", "next_obs", "action", "reason", "length", "success")
"""The fields every episode file has."""
OPTIONAL = ("success_step", "ret")
"""The fields an episode file may have (defaults in the module docstring)."""


def reason_names() -> tuple[str, ...]:
    """HABC's reason codes by index (`rlx.algos.finetune.interventions.REASONS`): 0 is the
    policy, the others the expert's reasons for taking over."""
    from rlx.algos.finetune import interventions

    return tuple(interventions.REASONS)


def _allowed_reasons() -> str:
    names = reason_names()
    return f"0..{len(names) - 1} (" + ", ".join(f"{i} {n}" for i, n in enumerate(names)) + ")"


def _where(index: tuple[int, ...]) -> str:
    """`index` ([e] or [e, t]) as "episode e[, step t]"."""
    text = f"episode {index[0]}"
    return text + (f", step {index[1]}" if len(index) > 1 else "")


def _check_fields(arrays: Mapping[str, Any]) -> None:
    """RlxError for an unknown field (with the closest name) or a missing required one."""
    for name in arrays:
        if name not in REQUIRED + OPTIONAL:
            raise unknown("episode field", name, REQUIRED + OPTIONAL)
    for name in REQUIRED:
        if name not in arrays:
            what = "the outcome of each episode, shape [E]" if name == "success" else "required"
            raise RlxError(
                f"episode field {name!r} is missing ({what}); the schema needs "
                f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})."
            )


def _check_kind(name: str, value: np.ndarray, kind: str) -> None:
    """RlxError unless `value`'s dtype is of `kind` ("float": floating or integer; "int":
    integer; "bool": bool or integer 0/1)."""
    ok = {
        "float": np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer),
        "int": np.issubdtype(value.dtype, np.integer),
        "bool": value.dtype == bool or np.issubdtype(value.dtype, np.integer),
    }[kind]
    if not ok:
        allowed = {"float": "a float array", "int": "an integer array",
                   "bool": "a bool or 0/1 integer array"}[kind]  # fmt: skip
        raise RlxError(f"episode field {name!r} has dtype {value.dtype}; it must be {allowed}.")


def _check_shapes(a: Mapping[str, np.ndarray], obs_size: int | None,
                  action_size: int | None) -> tuple[int, int]:  # fmt: skip
    """(E, T) of the arrays; RlxError for a wrong rank or a shape that disagrees with obs."""
    obs = a["obs"]
    if obs.ndim != 3 or 0 in obs.shape:
        raise RlxError(
            f"episode field 'obs' has shape {obs.shape}; it must be [E, T, O], all >= 1."
        )
    e, t, o = obs.shape
    expected = {"next_obs": (e, t, o), "action": (e, t, None), "reason": (e, t),
                "length": (e,), "success": (e,), "success_step": (e,), "ret": (e,)}  # fmt: skip
    for name, want in expected.items():
        if name not in a:
            continue
        have = a[name].shape
        if len(have) != len(want) or any(
            w not in (None, h) for w, h in zip(want, have, strict=True)
        ):
            text = "[" + ", ".join("A" if w is None else str(w) for w in want) + "]"
            raise RlxError(
                f"episode field {name!r} has shape {have}; with obs of shape {obs.shape} "
                f"(E, T, O) it must be {text}."
            )
    if a["action"].shape[-1] == 0:
        raise RlxError(f"episode field 'action' has shape {a['action'].shape}; A must be >= 1.")
    for name, size, got in (("obs", obs_size, o), ("action", action_size, a["action"].shape[-1])):
        if size is not None and got != size:
            raise RlxError(
                f"episode field {name!r} has width {got}; the policy and env need {size}."
            )
    return e, t


def _first(mask: np.ndarray) -> tuple[int, ...]:
    """The index of the first True entry of `mask`."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_values(a: Mapping[str, np.ndarray], t: int) -> None:
    """Lengths in 1..T, 0/1 outcomes, reason codes in range and finite numbers on valid steps,
    success steps inside their episode and only for successes."""
    length = a["length"]
    if (bad := (length < 1) | (length > t)).any():
        (e,) = _first(bad)
        raise RlxError(
            f"episode field 'length' is {length[e]} at episode {e}; it must be in 1..{t} (T)."
        )
    success = a["success"]
    if success.dtype != bool and (bad := (success != 0) & (success != 1)).any():
        (e,) = _first(bad)
        raise RlxError(
            f"episode field 'success' is {success[e]} at episode {e}; it must be 0 or 1."
        )
    valid = np.arange(t)[None, :] < length[:, None]
    n_reasons = len(reason_names())
    reason = a["reason"]
    if (bad := valid & ((reason < 0) | (reason >= n_reasons))).any():
        idx = _first(bad)
        raise RlxError(
            f"episode field 'reason' is {reason[idx]} at {_where(idx)}; allowed codes are "
            f"{_allowed_reasons()}."
        )
    for name in ("obs", "next_obs", "action"):
        if (bad := valid & ~np.isfinite(a[name]).all(axis=-1)).any():
            idx = _first(bad)
            raise RlxError(
                f"episode field {name!r} is not finite at {_where(idx)}; every valid step "
                "must hold finite numbers."
            )
    if "ret" in a and (bad := ~np.isfinite(a["ret"])).any():
        (e,) = _first(bad)
        raise RlxError(f"episode field 'ret' is {a['ret'][e]} at episode {e}; it must be finite.")
    if "success_step" in a:
        _check_success_step(a["success_step"], success.astype(bool), length)


def _check_success_step(step: np.ndarray, success: np.ndarray, length: np.ndarray) -> None:
    """RlxError unless a success's step is in 0..length-1 and a failure's is -1."""
    if (bad := ~success & (step != -1)).any():
        (e,) = _first(bad)
        raise RlxError(
            f"episode field 'success_step' is {step[e]} at episode {e}, a failure (success 0); "
            "a failed episode's success_step must be -1."
        )
    if (bad := success & ((step < 0) | (step >= length))).any():
        (e,) = _first(bad)
        raise RlxError(
            f"episode field 'success_step' is {step[e]} at episode {e}, a success of length "
            f"{length[e]}; it must be in 0..{length[e] - 1} (< length)."
        )


def validate(arrays: Mapping[str, Any], obs_size: int | None = None,
             action_size: int | None = None) -> None:  # fmt: skip
    """RlxError (one line naming the field, its bad value or shape and what is allowed) unless
    `arrays` follow the schema of the module docstring; `obs_size`/`action_size`, where given,
    are the widths the policy and env need."""
    _check_fields(arrays)
    a = {k: np.asarray(v) for k, v in arrays.items()}
    kinds = {"obs": "float", "next_obs": "float", "action": "float", "reason": "int",
             "length": "int", "success": "bool", "success_step": "int", "ret": "float"}  # fmt: skip
    for name, value in a.items():
        _check_kind(name, value, kinds[name])
    _, t = _check_shapes(a, obs_size, action_size)
    _check_values(a, t)


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` episode file (unchecked); RlxError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise RlxError(f"episode file {str(path)!r} does not exist (or is not a file).")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as err:
        raise RlxError(
            f"episode file {str(path)!r} is not a readable .npz archive: {err}"
        ) from None


def from_arrays(arrays: Mapping[str, Any], obs_size: int | None = None,
                action_size: int | None = None) -> Any:  # fmt: skip
    """`rlx.algos.finetune.habc.Episodes` of schema arrays (validated first): padding zeroed,
    ``valid`` the prefix of ``length``, ``intervened`` where reason > 0, ``started`` where an
    intervention begins, ``success_step`` and ``ret`` defaulted (module docstring)."""
    import jax.numpy as jnp
    from rlx.algos.finetune import habc

    validate(arrays, obs_size, action_size)
    a = {k: np.asarray(v) for k, v in arrays.items()}
    e, t = a["reason"].shape
    valid = np.arange(t)[None, :] < a["length"][:, None]
    success = a["success"].astype(bool)
    step = a.get("success_step", np.where(success, a["length"] - 1, -1))
    reason = np.where(valid, a["reason"], 0).astype(np.int32)
    intervened = reason > 0
    before = np.concatenate([np.zeros((e, 1), bool), intervened[:, :-1]], axis=1)
    zero = lambda x: np.where(valid[..., None], x, 0).astype(np.float32)  # noqa: E731
    return habc.Episodes(
        obs=jnp.asarray(zero(a["obs"])),
        next_obs=jnp.asarray(zero(a["next_obs"])),
        action=jnp.asarray(zero(a["action"])),
        intervened=jnp.asarray(intervened),
        reason=jnp.asarray(reason),
        valid=jnp.asarray(valid),
        started=jnp.asarray(intervened & ~before),
        success_step=jnp.asarray(step.astype(np.int32)),
        ret=jnp.asarray(a.get("ret", success).astype(np.float32)),
    )


def load_episodes(path: str | Path, obs_size: int | None = None,
                  action_size: int | None = None) -> Any:  # fmt: skip
    """The episodes of an ``.npz`` file as `rlx.algos.finetune.habc.Episodes` (`from_arrays`);
    RlxError naming the file and the first problem."""
    arrays = read_arrays(path)
    try:
        return from_arrays(arrays, obs_size, action_size)
    except RlxError as err:
        raise RlxError(f"episode file {str(path)!r}: {err}") from None


def save_episodes(path: str | Path, *, obs: Any, next_obs: Any, action: Any, reason: Any,
                  length: Any, success: Any, success_step: Any = None,
                  ret: Any = None) -> Path:  # fmt: skip
    """Validates the arrays (module docstring) and writes them to `path` as an ``.npz`` file,
    atomically (a reader sees the old file or the new one); returns `path`."""
    arrays = {"obs": obs, "next_obs": next_obs, "action": action, "reason": reason,
              "length": length, "success": success, "success_step": success_step, "ret": ret}  # fmt: skip
    arrays = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    validate(arrays)
    with atomic_file(path, "wb") as handle:
        np.savez(handle, **arrays)
    return Path(path)
