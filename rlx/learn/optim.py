"""Optimiser steps with traced step sizes, shared by the off-policy learners.

Learning rates are hyperparameter leaves of a config (traced arrays under `vmap`), so they are
applied here by hand instead of being baked into an optax chain: a learning-rate grid then
shares one compiled program.
"""

from __future__ import annotations

from typing import Any

import jax
import optax


def adam_step(
    params: Any, grads: Any, opt_state: optax.OptState, lr: jax.Array
) -> tuple[Any, optax.OptState]:
    """One Adam step, theta <- theta - lr * Adam(g), with lr a traced value.

    Returns the new parameters and Adam moments (the state of `optax.scale_by_adam()`).
    """
    steps, opt_state = optax.scale_by_adam().update(grads, opt_state, params)
    return jax.tree.map(lambda p, s: p - lr * s, params, steps), opt_state


def polyak(target: Any, online: Any, tau: jax.Array) -> Any:
    """Polyak averaging of a target network: theta' <- (1 - tau) theta' + tau theta."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)
