"""The one error type users see: a bad name, value or budget, reported as a single line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np


class RlxError(ValueError):
    """A user-facing error; the CLI prints its message as one line and exits with code 2."""


def unknown(kind: str, value: object, allowed: Iterable[str]) -> RlxError:
    """An error for an unknown name, listing the allowed ones and the closest matches."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(str(value), allowed, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return RlxError(f"unknown {kind} {value!r}.{hint} Allowed: {', '.join(allowed)}.")


def positive_size(name: str, value: object) -> int:
    """`value` as an int if it is an integer >= 1 (an env's dimension or agent count), else an
    RlxError naming it and what is allowed."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise RlxError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)
