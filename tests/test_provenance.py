"""The revision a result names: from git, or from a manifest where git is absent (a lent GPU)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from rlx import provenance
from rlx.errors import RlxError


def _repo(path):
    (path / "rlx").mkdir(parents=True)
    (path / "rlx" / "a.py").write_text("x = 1\n")
    (path / "README.md").write_text("hello\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-C", str(path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    return head


def test_a_manifest_names_the_revision_where_git_is_absent(tmp_path, monkeypatch):
    head = _repo(tmp_path / "repo")
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path / "repo")
    manifest = provenance.write_manifest(tmp_path / "repo" / ".whl" / "manifest.json")
    assert manifest["revision"] == head and manifest["files"] == ["README.md", "rlx/a.py"]

    copy = tmp_path / "copy"  # the working tree as it travels: no .git
    shutil.copytree(tmp_path / "repo", copy, ignore=shutil.ignore_patterns(".git"))
    monkeypatch.setattr(provenance, "REPO_ROOT", copy)
    path = copy / ".whl" / "manifest.json"
    assert provenance.git_state() == {"revision": head, "diff_sha256": None}
    assert provenance.manifest_state(path) == {"revision": head, "diff_sha256": None}

    (copy / "rlx" / "a.py").write_text("x = 2\n")
    state = provenance.manifest_state(path)
    assert state["revision"] == head + "+dirty" and len(state["diff_sha256"]) == 16

    path.unlink()
    assert provenance.manifest_state(path) == {"revision": "unknown", "diff_sha256": None}


def test_a_manifest_is_refused_for_a_dirty_tree(tmp_path, monkeypatch):
    _repo(tmp_path)
    (tmp_path / "rlx" / "a.py").write_text("x = 3\n")
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    with pytest.raises(RlxError, match=r"\+dirty: commit before"):
        provenance.write_manifest(tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_cpu_isa_names_the_vector_extensions_of_the_flags_line():
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma avx512f avx512bw\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm sve\n"
    assert provenance.cpu_isa(x86) == ["avx2", "fma", "avx512f"]
    assert provenance.cpu_isa(arm) == ["asimd", "sve"]
    assert provenance.cpu_isa("model name\t: x\nflags\t: fpu sse2\n") == []
    assert provenance.cpu_isa("") == []


def test_describe_hardware_names_the_vector_extensions_when_recorded():
    hw = {"backend": "cpu", "device_kind": "cpu", "device_count": 1, "cpu": "AMD EPYC",
          "cpu_cores": 2}  # fmt: skip
    assert provenance.describe_hardware(hw) == "CPU only: AMD EPYC, 2 cores (1 JAX device(s))"
    hw["cpu_isa"] = ["avx2", "fma", "avx512f"]
    assert provenance.describe_hardware(hw) == (
        "CPU only: AMD EPYC (avx2 fma avx512f), 2 cores (1 JAX device(s))"
    )
    gpu = {**hw, "backend": "gpu", "device_kind": "H200", "device_count": 8}
    assert provenance.describe_hardware(gpu) == "8x H200 (gpu); host AMD EPYC (avx2 fma avx512f)"
