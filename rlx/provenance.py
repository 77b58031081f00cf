"""Where and with what a result was produced: versions, git revision, hardware, precision."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
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


def versions() -> dict[str, str]:
    """Python and the installed versions of the stack's packages."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def git_revision() -> str:
    """The repository's HEAD commit, with '+dirty' when tracked files are modified."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, object]:
    """The accelerator(s) JAX runs on, the host CPU and its core count."""
    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "process_count": jax.process_count(),
        "cpu": _cpu_name(),
        "cpu_cores": os.cpu_count(),
    }


def describe_hardware(hw: dict[str, object]) -> str:
    """One line, e.g. '1x cpu (Intel Xeon ..., 2 cores)'."""
    if hw["backend"] == "cpu":
        return (
            f"CPU only: {hw['cpu']}, {hw['cpu_cores']} cores ({hw['device_count']} JAX device(s))"
        )
    return f"{hw['device_count']}x {hw['device_kind']} ({hw['backend']}); host {hw['cpu']}"


def provenance() -> dict[str, object]:
    """Everything a table header needs to say where its numbers come from."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git": git_revision(),
        "versions": versions(),
        "hardware": hardware(),
        "matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),
    }
