"""Factorized-baselines family (Wu et al. 2018): action-dependent factorized policy gradients,
the linear control-variate baseline and the gradient-variance study (`rlx gradvar`)."""
