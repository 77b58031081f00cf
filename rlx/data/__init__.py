"""Data that runs read: assets (read-only inputs hashed into a plan), offline datasets and
goal-conditioned trajectories, and the recipes that build them."""
