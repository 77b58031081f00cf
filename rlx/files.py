"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half
of one, and an interrupted writer leaves the old file as it was and no temporary file behind.

Every writer builds its output under a temporary name beside the target,
``.<name>.<pid>-<random>.tmp`` (unique per process, so writers sharing a directory, such as a
sweep's shards, never collide), then renames it over the target in one step.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rlx.errors import RlxError

TEMP_SUFFIX = ".tmp"


def temp_path(path: str | Path) -> Path:
    """A fresh temporary name beside `path`: ``.<name>.<pid>-<random>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_temp(path: str | Path, name: str) -> bool:
    """Whether `path` is a temporary file or directory of a write of `name` in progress (or of
    one killed before it could clean up)."""
    text = Path(path).name
    return text.startswith(f".{name}.") and text.endswith(TEMP_SUFFIX)


def check_new(path: str | Path, overwrite: bool = False) -> Path:
    """`path`, refused (RlxError) when it exists and not `overwrite`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise RlxError(f"{str(path)!r} exists; pass --overwrite to replace it.")
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _replace(tmp: Path, path: Path) -> None:
    """Renames `tmp` over `path`; a directory (or a file where a directory was) first moves
    the old one aside, which is restored if the rename fails."""
    if not (tmp.is_dir() or path.is_dir()) or not path.exists():
        os.replace(tmp, path)
        return
    aside = temp_path(path)
    os.replace(path, aside)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(aside, path)
        raise
    _remove(aside)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Yields an open handle (`mode` "wb" or "w") on a temporary file beside `path`; when the
    block ends without error the file is flushed to disk and renamed over `path`. On an error
    the temporary file is removed and `path` is left as it was. For writers that take a handle
    (``np.savez``, ``json.dump``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Replaces `path` by `data` atomically; returns `path`."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Replaces `path` by `text` (UTF-8) atomically; returns `path`."""
    return write_bytes_atomic(path, text.encode())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a path of the same name as `path` inside a temporary directory beside it, not
    yet created, for a writer that makes a file or a directory there itself; when the block
    ends without error whatever it made replaces `path` (an existing file or directory is
    removed). On an error, or when nothing was made, `path` is left as it was and the
    temporary directory is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    box = temp_path(path)
    box.mkdir()
    try:
        made = box / path.name
        yield made
        if made.exists() or made.is_symlink():
            _replace(made, path)
    finally:
        _remove(box)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yields an empty temporary directory beside `path` to fill; when the block ends without
    error it replaces `path` (an existing one is removed), so `path` is never half-written.
    On an error the temporary directory is removed and `path` is left as it was."""
    with atomic_path(path) as tmp:
        tmp.mkdir()
        yield tmp
