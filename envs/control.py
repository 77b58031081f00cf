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
