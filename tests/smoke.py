"""`smoke_jit`: jax.jit for test programs that run only a few steps.

Such a program's cost is its compile, mostly LLVM's optimisation of the physics pipeline. At
LLVM's lowest level (XLA's ``xla_backend_optimization_level=0``) an MJX reset-and-step program
compiles in about half the time (e.g. brax:humanoid 33 s -> 17 s on a 2-core CPU) and runs a few
times slower, which a few steps do not notice. Results may differ from the optimised program's
in the last bits, so tests that compare numbers against an `rlx` run do not use it.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

SMOKE_OPTIONS = {"xla_backend_optimization_level": 0}


def smoke_jit(fn: Callable) -> Callable:
    """``jax.jit(fn)`` compiled with `SMOKE_OPTIONS`."""
    return jax.jit(fn, compiler_options=SMOKE_OPTIONS)
