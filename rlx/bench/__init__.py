"""Benchmarks: rlx's own algorithms against peer implementations (see :mod:`rlx.bench.peer`)."""
