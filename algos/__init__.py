"""Algorithms, one module each, pure functions only (see `rlx.algorithm` for the contract)."""
