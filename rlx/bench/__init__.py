"""Measurement studies: throughput, compile time, scaling and memory of rlx's algorithms (and
against peer implementations, :mod:`rlx.bench.peer`), and the policy-gradient variance study
(:mod:`rlx.bench.gradvar`, ``rlx gradvar``), generic over algorithms that provide the
``gradient_estimates`` extra. Unlike the core, these modules may name particular algorithms."""
