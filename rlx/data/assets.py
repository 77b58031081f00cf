"""Assets: read-only inputs shared by every run of a batch (a dataset, a pretrained policy).

An algorithm declares the assets it reads (`AssetSpec`: how to load a file into a pytree of
arrays and how to check it against the environment); a run names a file for each
(`resolve`). The runner loads each asset once, places it on the devices once (replicated over
the run axis: never vmapped, never part of the per-run state, never checkpointed) and passes it
to the algorithm's ``init`` and ``update`` as an argument of the compiled programs, so the
memory for a dataset does not grow with the number of seeds. Each asset's identity (path and
SHA-256 of its content) goes into the plan hash and the run record.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlx.errors import RlxError, unknown

Tree = Any
Assets = Mapping[str, Tree] | None
"""What ``init`` and ``update`` receive: asset name -> its arrays (None for an algorithm that reads
none)."""


@dataclasses.dataclass(frozen=True)
class AssetSpec:
    """What an algorithm needs of one asset."""

    doc: str
    """One line: what the asset is and its file format."""
    load: Callable[[Path], Tree]
    """Reads the file into a pytree of numpy arrays; raises RlxError for a bad format."""
    check: Callable[[Tree, Any, Any], None] | None = None
    """``check(tree, env, config)`` raises RlxError when the asset does not fit the env/config."""
    required: bool = True


@dataclasses.dataclass(frozen=True)
class Asset:
    """A resolved asset: where it is and what it holds (its content hash)."""

    name: str
    path: str
    sha256: str

    def data(self, spec: AssetSpec) -> Tree:
        """The asset's arrays (read once per process and file content)."""
        return _load_cached(spec.load, self.path, self.sha256)

    def identity(self) -> dict[str, str]:
        """Path and content hash, as written into the plan hash and the run record."""
        return {"path": self.path, "sha256": self.sha256}


@functools.lru_cache(maxsize=8)
def _load_cached(load: Callable[[Path], Tree], path: str, sha256: str) -> Tree:
    return load(Path(path))


def content_hash(path: Path) -> str:
    """SHA-256 of a file, or of every file under a directory (relative names and contents)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _hash_once(path: Path) -> str:
    """`content_hash`, computed once per file version in a process (a sweep plans many cells
    over one dataset): keyed by path, size and modification time; directories are hashed
    every time (their own times do not follow their files' contents)."""
    if path.is_dir():
        return content_hash(path)
    stat = path.stat()
    return _cached_hash(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _cached_hash(path: str, size: int, mtime_ns: int) -> str:
    return content_hash(Path(path))


def resolve(
    specs: Mapping[str, AssetSpec],
    paths: Mapping[str, str | Path],
    env: Any,
    config: Any,
    owner: str = "this algorithm",
) -> dict[str, Asset]:
    """Checks that `paths` names exactly the assets `specs` needs, that each file exists, loads
    in the declared format and fits `env` and `config`; returns the resolved assets.

    Raises RlxError naming the asset, the path and what is wrong.
    """
    for name in paths:
        if name not in specs:
            if not specs:
                raise RlxError(f"{owner} reads no assets, but {name!r} was given.")
            raise unknown("asset", name, specs)
    missing = [n for n, s in specs.items() if s.required and n not in paths]
    if missing:
        wanted = "; ".join(f"{n}: {specs[n].doc}" for n in missing)
        raise RlxError(f"missing asset(s) {', '.join(missing)} ({wanted}); give --asset NAME=PATH.")
    out = {}
    for name, raw in paths.items():
        path = Path(raw).expanduser().resolve()
        if not path.exists():
            raise RlxError(f"asset {name!r}: {str(raw)!r} does not exist.")
        asset = Asset(name, str(path), _hash_once(path))
        tree = asset.data(specs[name])
        if specs[name].check is not None:
            specs[name].check(tree, env, config)
        out[name] = asset
    return out


def load_npz(path: Path, fields: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The arrays `fields` (name -> number of dimensions) of an ``.npz`` file, as float32 with
    one common leading length; raises RlxError for an unreadable file or a missing or
    misshapen field."""
    try:
        with np.load(path, allow_pickle=False) as data:
            present = set(data.files)
            missing = [f for f in fields if f not in present]
            if missing:
                raise RlxError(
                    f"{str(path)!r} lacks the field(s) {', '.join(missing)} "
                    f"(has {', '.join(sorted(present)) or 'none'})."
                )
            out = {f: np.asarray(data[f], dtype=np.float32) for f in fields}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        reason = str(err).split(". ")[0].rstrip(".")
        raise RlxError(f"cannot read {str(path)!r} as an .npz array file: {reason}.") from None
    lengths = {f: a.shape[0] if a.ndim else None for f, a in out.items()}
    for name, ndim in fields.items():
        if out[name].ndim != ndim:
            raise RlxError(
                f"{str(path)!r}: field {name!r} has shape {out[name].shape}; "
                f"expected {ndim} dimensions."
            )
    if len(set(lengths.values())) != 1:
        raise RlxError(f"{str(path)!r}: fields have different lengths {lengths}.")
    if next(iter(lengths.values())) == 0:
        raise RlxError(f"{str(path)!r} holds no rows.")
    return out
