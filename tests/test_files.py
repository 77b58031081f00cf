"""`rlx.files`: atomic writes leave the old file or the new one, never half of one, and an
interrupted writer leaves no temporary file behind."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rlx import files
from rlx.data import datasets
from rlx.errors import RlxError


class Boom(Exception):
    pass


def test_write_text_and_bytes_replace_the_file_and_leave_nothing_else(tmp_path):
    path = tmp_path / "sub" / "a.json"  # the directory is created
    assert files.write_text_atomic(path, "one") == path
    files.write_text_atomic(path, "two")
    assert path.read_text() == "two"
    files.write_bytes_atomic(path, b"\x00three")
    assert path.read_bytes() == b"\x00three"
    assert os.listdir(path.parent) == ["a.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0o600


def test_a_writer_that_fails_midway_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "data.npz"
    datasets.save_npz(path, {"x": np.arange(3)})
    before = path.read_bytes()
    with pytest.raises(Boom), files.atomic_file(path) as handle:
        handle.write(b"half a file")
        raise Boom
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["data.npz"]
    # the same through save_npz: an array that cannot be converted fails mid-write
    with pytest.raises(ValueError):
        datasets.save_npz(path, {"y": np.arange(4), "z": [[1], [1, 2]]})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["data.npz"]


def test_atomic_directory_replaces_a_directory_only_when_the_block_completes(tmp_path):
    out = tmp_path / "run"
    with files.atomic_directory(out) as tmp:
        (tmp / "record.json").write_text("old")
    with pytest.raises(Boom), files.atomic_directory(out) as tmp:
        (tmp / "record.json").write_text("new, half written")
        raise Boom
    assert (out / "record.json").read_text() == "old"
    assert os.listdir(tmp_path) == ["run"]
    with files.atomic_directory(out) as tmp:
        (tmp / "other.json").write_text("new")
    assert os.listdir(out) == ["other.json"]
    assert os.listdir(tmp_path) == ["run"]


def test_atomic_path_takes_a_file_or_a_directory_made_under_the_target_name(tmp_path):
    out = tmp_path / "asset.npz"
    with files.atomic_path(out) as tmp:
        assert tmp.name == "asset.npz" and not tmp.exists()  # writers may key on the suffix
        tmp.write_text("file")
    with files.atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "inside").write_text("dir")
    assert (out / "inside").read_text() == "dir"  # a directory replaced the file
    with pytest.raises(Boom), files.atomic_path(out) as tmp:
        tmp.write_text("half")
        raise Boom
    assert (out / "inside").read_text() == "dir"
    with files.atomic_path(out):
        pass  # nothing made: nothing replaced
    assert (out / "inside").read_text() == "dir"
    assert os.listdir(tmp_path) == ["asset.npz"]


def test_temp_names_are_unique_per_write_and_recognised(tmp_path):
    target = tmp_path / "sweep.json"
    names = {files.temp_path(target).name for _ in range(20)}
    assert len(names) == 20
    assert all(files.is_temp(tmp_path / n, "sweep.json") for n in names)
    assert all(str(os.getpid()) in n for n in names)  # shards sharing a directory never collide
    assert not files.is_temp(target, "sweep.json")
    assert not files.is_temp(tmp_path / ".sweep.json.x.tmp", "table.md")


def test_check_new_refuses_an_existing_path_unless_overwrite(tmp_path):
    path = tmp_path / "x.json"
    assert files.check_new(path) == path
    path.write_text("{}")
    with pytest.raises(RlxError, match="exists; pass --overwrite"):
        files.check_new(path)
    assert files.check_new(str(path), overwrite=True) == path
