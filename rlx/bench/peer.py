"""Peer baseline: Brax's own PPO (``brax.training.agents.ppo.train``), run in its own venv.

Brax 0.14.2's training code calls ``jax.device_put_replicated``, which jax 0.10 removed, so
it cannot run in rlx's main environment. This module keeps a separate virtual environment
pinned by ``requirements-peer.lock`` (jax/jaxlib 0.9.2, flax 0.12.6, brax 0.14.2, mujoco and
mujoco-mjx 3.17.0) and runs :mod:`rlx.bench.brax_ppo_worker` in a subprocess of it.

Only the standard library is imported here, so this module imports in any environment.

Environment variables:

* ``RLX_PEER_VENV``: where the peer venv lives when ``root`` is not given
  (default ``~/.cache/rlx/peer-brax-venv``).
* ``RLX_PEER_PYTHON``: the Python 3.11 interpreter the venv is created from
  (default: the interpreter running this module).

The worker inherits this process's environment (``JAX_PLATFORMS``, ``XLA_FLAGS``, ...), minus
``PYTHONPATH``/``PYTHONHOME``/``VIRTUAL_ENV``, which would leak the main environment into it.
Mind ``JAX_COMPILATION_CACHE_DIR`` there: with a persistent compilation cache, repeated
peer runs skip XLA compiles and report a smaller ``compile_s``.
"""

from __future__ import annotations

import collections
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = REPO_ROOT / "requirements-peer.lock"
WORKER = Path(__file__).resolve().with_name("brax_ppo_worker.py")

MARKER_NAME = "rlx-peer-ready.json"  # written last: a venv without it is incomplete
INSTALL_LOG_NAME = "rlx-peer-install.log"
_STRIPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")
_TAIL_LINES = 60


def _default_root() -> Path:
    return Path(os.environ.get("RLX_PEER_VENV") or "~/.cache/rlx/peer-brax-venv").expanduser()


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}


def _lock_sha256() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def _read_marker(root: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((root / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _write_marker(root: Path, marker: dict[str, Any]) -> None:
    from rlx.files import write_text_atomic

    write_text_atomic(root / MARKER_NAME, json.dumps(marker, indent=1) + "\n")


def _wanted_project() -> str | None:
    """The repo root to install editable, or None when it has no pyproject.toml (yet)."""
    return str(REPO_ROOT) if (REPO_ROOT / "pyproject.toml").is_file() else None


def _ready(root: Path, lock_hash: str) -> bool:
    marker = _read_marker(root)
    return (
        marker is not None
        and marker.get("lock_sha256") == lock_hash
        and marker.get("project") == _wanted_project()
        and (root / "bin" / "python").exists()
    )


def _run_logged(cmd: list[str], log: Path) -> None:
    with log.open("a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.run(
            cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_child_env()
        )
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-_TAIL_LINES:])
        raise RuntimeError(
            f"peer venv setup failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- tail of {log} ---\n{tail}"
        )


def _remove(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _relocate(venv: Path, old: Path, new: Path) -> None:
    """Rewrite the absolute venv path in bin/ scripts (shebangs, activate) and pyvenv.cfg."""
    old_b, new_b = str(old).encode(), str(new).encode()
    for f in [*venv.joinpath("bin").iterdir(), venv / "pyvenv.cfg"]:
        if f.is_file() and not f.is_symlink():
            data = f.read_bytes()
            if old_b in data:
                f.write_bytes(data.replace(old_b, new_b))


def _build_full(root: Path) -> None:
    """Build the venv from the lock file in a scratch dir next to ``root``, then move it there.

    A killed build leaves only a ``.<name>.build-<pid>`` dir (removed by the next build), never
    a half-installed ``root``.
    """
    for stale in root.parent.glob(f".{root.name}.build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root.parent / f".{root.name}.build-{os.getpid()}"
    log = tmp / INSTALL_LOG_NAME
    print(
        f"rlx.bench.peer: building the Brax peer venv at {root} from {LOCK_FILE.name} "
        f"(one-time, ~700 MB download, ~1 GB on disk; log: {log}) ...",
        file=sys.stderr,
        flush=True,
    )
    base = os.environ.get("RLX_PEER_PYTHON") or sys.executable
    try:
        subprocess.run(
            [base, "-m", "venv", str(tmp)], check=True, env=_child_env(), stdin=subprocess.DEVNULL
        )
        _run_logged([*_pip(tmp), "install", "-r", str(LOCK_FILE)], log)
        _relocate(tmp, tmp, root)
        _remove(root)
        os.rename(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _pip(venv: Path) -> list[str]:
    return [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input"]


def peer_venv(root: Path | None = None) -> Path:
    """Make sure the peer venv exists and matches ``requirements-peer.lock``; return its python.

    The venv is (re)built when it is missing, incomplete (no marker file) or was built from a
    lock file with different content (its sha256 is stored in the marker). A full build
    happens in a scratch dir next to ``root`` that is renamed into place once the lock file
    is installed. Then, when the repo has a ``pyproject.toml``, rlx itself is installed with
    ``pip install --no-deps -e <repo root>`` so the worker can import ``rlx.envs.make``; if
    only that part is stale (the repo moved, or the pyproject appeared) just that step is
    redone. The marker is written last, all under an exclusive file lock, so concurrent
    callers do not race and an interrupted setup is redone on the next call.
    """
    root = Path(root) if root is not None else _default_root()
    root = root.expanduser().absolute()
    python = root / "bin" / "python"
    lock_hash = _lock_sha256()
    if _ready(root, lock_hash):
        return python

    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock_fd:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if _ready(root, lock_hash):  # another process finished it while we waited
            return python
        project = _wanted_project()
        marker = _read_marker(root)
        (root / MARKER_NAME).unlink(missing_ok=True)
        if marker is not None and marker.get("lock_sha256") == lock_hash and python.exists():
            print(
                f"rlx.bench.peer: (re)installing rlx from {REPO_ROOT} into the peer venv at "
                f"{root} ...",
                file=sys.stderr,
                flush=True,
            )
        else:
            _build_full(root)
        log = root / INSTALL_LOG_NAME
        if project is not None:
            _run_logged([*_pip(root), "install", "--no-deps", "-e", project], log)
        else:  # no pyproject.toml: the worker can run brax: envs only
            _run_logged([*_pip(root), "uninstall", "-y", "rlx"], log)
        _write_marker(
            root,
            {
                "lock_sha256": lock_hash,
                "project": project,
                "base_python": os.environ.get("RLX_PEER_PYTHON") or sys.executable,
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            },
        )
    return python


def _tail(text: str | bytes | None) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.splitlines()[-_TAIL_LINES:])


def run_brax_ppo(
    env: str,
    settings: dict[str, Any],
    *,
    backend: str | None = None,
    timeout_s: float = 3600,
    venv_root: Path | None = None,
    echo_stderr: bool = False,
    network: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train Brax's own PPO on ``env`` in the peer venv and return the worker's JSON result.

    Args:
      env: ``"brax:<name>"`` for a Brax registry env (``brax.envs.get_environment``), or an
        rlx env name (``rlx.envs.make(name, wrap=False)``).
      settings: keyword arguments for ``brax.training.agents.ppo.train`` (JSON-serialisable),
        plus optionally ``policy_hidden_layer_sizes`` / ``value_hidden_layer_sizes``, which
        the worker turns into a ``network_factory``.
      backend: Brax physics backend for ``brax:`` envs (``"mjx"``, ``"spring"``,
        ``"generalized"``, ``"positional"``); None takes the env's default.
      timeout_s: wall-clock limit for the worker; it is killed past it.
      venv_root: where the peer venv lives (see :func:`peer_venv`).
      network: further ``make_ppo_networks`` options (activation name, distribution_type,
        noise_std_type, init_noise_std; see :mod:`rlx.bench.brax_ppo_worker`).
      echo_stderr: also copy the worker's stderr (progress lines, logs) to ours as it runs.

    Returns:
      The dict documented in :mod:`rlx.bench.brax_ppo_worker`.

    Raises:
      RuntimeError: the worker failed, timed out or printed no JSON; the message carries the
        tail of its stderr.
    """
    spec = {"env": env, "backend": backend, "settings": dict(settings), "network": network or {}}
    return _run_worker(spec, timeout_s, venv_root, echo_stderr)


def peer_raw_env_rate(
    env: str,
    backend: str | None,
    num_envs: int,
    episode_length: int,
    steps: int,
    reps: int = 1,
    *,
    timeout_s: float = 1800,
    venv_root: Path | None = None,
) -> dict[str, Any]:
    """`rlx.bench.throughput.raw_env_rate` measured in the peer venv: the same training-wrapped
    env under random actions, compiled by the peer's jax, so each side of a comparison can be
    set against the physics on its own stack. Returns ``{"env_steps_per_s", "versions",
    "device"}``."""
    spec = {"env": env, "backend": backend, "raw_env": dict(
        num_envs=num_envs, episode_length=episode_length, steps=steps, reps=reps)}  # fmt: skip
    return _run_worker(spec, timeout_s, venv_root, echo_stderr=False)


def _run_worker(
    spec: dict[str, Any], timeout_s: float, venv_root: Path | None, echo_stderr: bool
) -> dict[str, Any]:
    """Runs the worker on `spec` in the peer venv and returns its JSON result line."""
    env = spec["env"]
    python = peer_venv(venv_root)
    proc = subprocess.Popen(
        [str(python), str(WORKER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
        cwd=python.parent.parent,  # MuJoCo writes MUJOCO_LOG.TXT into the cwd
    )
    err_tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    out_chunks: list[str] = []

    def pump_stderr() -> None:
        for line in proc.stderr:
            err_tail.append(line.rstrip("\n"))
            if echo_stderr:
                sys.stderr.write(line)
                sys.stderr.flush()

    def pump_stdout() -> None:
        out_chunks.append(proc.stdout.read())

    readers = [threading.Thread(target=f, daemon=True) for f in (pump_stderr, pump_stdout)]
    for t in readers:
        t.start()
    try:
        proc.stdin.write(json.dumps(spec))
        proc.stdin.close()
    except BrokenPipeError:
        pass
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        for t in readers:
            t.join(timeout=10)
        raise RuntimeError(
            f"Brax peer worker timed out after {timeout_s:g} s on {env!r}; stderr tail:\n"
            + "\n".join(err_tail)
        ) from None
    for t in readers:
        t.join(timeout=60)
    stdout = "".join(out_chunks)
    if rc != 0:
        raise RuntimeError(
            f"Brax peer worker failed (exit {rc}) on {env!r}; stderr tail:\n" + "\n".join(err_tail)
        )
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    try:
        result = json.loads(lines[-1])
        if not isinstance(result, dict):
            raise ValueError("not a JSON object")
    except (IndexError, ValueError) as e:
        raise RuntimeError(
            f"Brax peer worker printed no JSON result ({e}) on {env!r}; stdout tail:\n"
            f"{_tail(stdout)}\nstderr tail:\n" + "\n".join(err_tail)
        ) from None
    return result
