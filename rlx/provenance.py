"""Where and with what a result was produced: versions, git revision, hardware, precision."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import jax

PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "chex",
    "orbax-checkpoint",
    "brax",
    "mujoco",
    "mujoco-mjx",
)
REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_PATHS = (".", ":(exclude)results", ":(exclude)runs")
"""What counts as code for the revision: everything but generated results."""


def versions() -> dict[str, str]:
    """Python and the installed versions of the stack's packages."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
    ).stdout


def git_state() -> dict[str, str | None]:
    """HEAD's commit (``revision``, with '+dirty' when code files are modified or untracked
    files are present: generated results under results/ and runs/ do not count) and, for a dirty tree, a SHA-256 of the diff against HEAD plus the
    untracked files' names and contents (``diff_sha256``), so two dirty trees can be told apart."""
    try:
        rev = _git("rev-parse", "--short=12", "HEAD").strip()
        changed = _git("status", "--porcelain", "--", *CODE_PATHS).strip()
        if not changed:
            return {"revision": rev, "diff_sha256": None}
        digest = hashlib.sha256(_git("diff", "HEAD", "--binary", "--", *CODE_PATHS).encode())
        untracked = _git("ls-files", "--others", "--exclude-standard", "--", *CODE_PATHS)
        for name in sorted(untracked.split("\n")):
            path = REPO_ROOT / name
            if name and path.is_file():
                digest.update(name.encode() + b"\0" + path.read_bytes())
    except (OSError, subprocess.SubprocessError):
        return manifest_state(manifest_path())
    return {"revision": rev + "+dirty", "diff_sha256": digest.hexdigest()[:16]}


def manifest_path() -> Path:
    """Where `write_manifest` leaves the code's identity for a machine without git (a lent
    GPU, to which the working tree travels without .git but with the carried .whl/ folder)."""
    return REPO_ROOT / ".whl" / "manifest.json"


def code_digest(root: Path, names: list[str]) -> str:
    """SHA-256 over the named files' paths and contents (a missing file counts as empty)."""
    digest = hashlib.sha256()
    for name in names:
        path = root / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
        digest.update(b"\0")
    return digest.hexdigest()


def write_manifest(path: Path | None = None) -> dict[str, object]:
    """Writes HEAD's revision, its code files and their digest to `path` (default
    `manifest_path()`), so that
    `manifest_state` can name the revision where git is absent. Raises RlxError for a dirty
    tree: only committed code may produce results."""
    from rlx.errors import RlxError

    state = git_state()
    if state["diff_sha256"] is not None or state["revision"] == "unknown":
        raise RlxError(f"the tree is {state['revision']}: commit before writing a manifest.")
    names = sorted(_git("ls-files", "--", *CODE_PATHS).split("\n"))
    names = [n for n in names if n]
    manifest = {"revision": state["revision"], "files": names,
                "sha256": code_digest(REPO_ROOT, names)}  # fmt: skip
    from rlx.files import write_text_atomic

    write_text_atomic(path or manifest_path(), json.dumps(manifest))
    return manifest


def manifest_state(path: Path) -> dict[str, str | None]:
    """`git_state` where git is absent: the manifest's revision when the files it names hash
    to its digest here; '+dirty' with this tree's digest when they do not; 'unknown' without
    a readable manifest."""
    try:
        manifest = json.loads(path.read_text())
        digest = code_digest(REPO_ROOT, list(manifest["files"]))
        revision, expected = str(manifest["revision"]), str(manifest["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"revision": "unknown", "diff_sha256": None}
    if digest == expected:
        return {"revision": revision, "diff_sha256": None}
    return {"revision": revision + "+dirty", "diff_sha256": digest[:16]}


def git_revision() -> str:
    """The repository's HEAD commit, with '+dirty' when the tree has uncommitted changes."""
    return str(git_state()["revision"])


def code_identity(prov: dict[str, object]) -> str:
    """One string that names the code a provenance dict was made from: the revision, and the
    diff hash of a dirty tree (two records made by the same code have equal identities)."""
    diff = prov.get("diff_sha256")
    return f"{prov.get('git')}" + (f" (diff {diff})" if diff else "")


# Vector extensions XLA's CPU compiler generates code for when the host has them. One program
# can round differently on hosts that differ in these, so records and tables name them.
CPU_ISA = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "asimd", "sve")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpu_name(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_isa(cpuinfo: str) -> list[str]:
    """The `CPU_ISA` extensions named by the first flags line (x86 ``flags``, Arm
    ``Features``) of a /proc/cpuinfo text, in `CPU_ISA` order."""
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            return [f for f in CPU_ISA if f in flags]
    return []


def hardware() -> dict[str, object]:
    """The accelerator(s) JAX runs on, the host CPU, its vector extensions and core count."""
    devices = jax.devices()
    cpuinfo = _cpuinfo()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "process_count": jax.process_count(),
        "cpu": _cpu_name(cpuinfo),
        "cpu_isa": cpu_isa(cpuinfo),
        "cpu_cores": os.cpu_count(),
    }


def describe_hardware(hw: dict[str, object]) -> str:
    """One line, e.g. 'CPU only: AMD EPYC (avx2 fma avx512f), 2 cores (1 JAX device(s))'.
    Records made before the vector extensions were recorded are described without them."""
    cpu = f"{hw['cpu']} ({' '.join(hw['cpu_isa'])})" if hw.get("cpu_isa") else f"{hw['cpu']}"
    if hw["backend"] == "cpu":
        return f"CPU only: {cpu}, {hw['cpu_cores']} cores ({hw['device_count']} JAX device(s))"
    return f"{hw['device_count']}x {hw['device_kind']} ({hw['backend']}); host {cpu}"


XLA_VARIABLES = ("XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION",
                 "CUDA_VISIBLE_DEVICES", "XLA_PYTHON_CLIENT_PREALLOCATE",
                 "XLA_PYTHON_CLIENT_MEM_FRACTION", "TPU_VISIBLE_CHIPS")  # fmt: skip


def provenance(git: dict[str, str | None] | None = None) -> dict[str, object]:
    """Everything a table header needs to say where its numbers come from. Read it once, when a
    run or a sweep *starts*, and write that one copy into every record it produces. `git` is a
    `git_state()` already read at the start (read now if not given)."""
    git = git if git is not None else git_state()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git": git["revision"],
        "diff_sha256": git["diff_sha256"],
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "environment": {k: os.environ[k] for k in XLA_VARIABLES if k in os.environ},
        "versions": versions(),
        "hardware": hardware(),
        "matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),
    }
