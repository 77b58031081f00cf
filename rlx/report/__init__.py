"""Reporting: tables (IQM with bootstrap intervals), plots, statistics and rollout rendering of
run records and policy artifacts."""
