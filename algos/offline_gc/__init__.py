"""Offline goal-conditioned family (OGBench-style): the shared dataset learner (`common`),
goal-conditioned networks (`nets`), goal sampling, value-accuracy diagnostics, and TRL, GCIQL,
GCIVL, CRL, QRL and GCBC."""
