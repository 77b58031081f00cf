"""Control-design helpers for the hand-made baseline controllers (NumPy/SciPy, construction time)."""

from __future__ import annotations

import numpy as np
import scipy.linalg


def dlqr(a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Discrete-time LQR gain K for x' = A x + B u minimising sum x'Qx + u'Ru (u = -K x):

    P solves the discrete algebraic Riccati equation, K = (R + B'PB)^-1 B'PA.
    """
    p = scipy.linalg.solve_discrete_are(a, b, q, r)
    return np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)


def linearise_mujoco(
    model, n_frames: int, qpos: np.ndarray | None = None, eps: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of ``s' = A s + B u`` for one control step of a MuJoCo model at rest at `qpos`
    (default the model's ``qpos0``), with ``s = [q, qd]`` and ``u`` the actuator controls.

    One physics step is linearised by MuJoCo's finite differences (``mjd_transitionFD``, on a
    copy of the model's data), then composed `n_frames` times with the control held:
    ``A = A1^n``, ``B = sum_k A1^k B1``.
    """
    import mujoco

    data = mujoco.MjData(model)
    if qpos is not None:
        data.qpos[:] = qpos
    mujoco.mj_forward(model, data)
    nx, nu = 2 * model.nv, model.nu
    a1 = np.zeros((nx, nx))
    b1 = np.zeros((nx, nu))
    mujoco.mjd_transitionFD(model, data, eps, True, a1, b1, None, None)
    a = np.linalg.matrix_power(a1, n_frames)
    b = sum(np.linalg.matrix_power(a1, k) for k in range(n_frames)) @ b1
    return a, b
