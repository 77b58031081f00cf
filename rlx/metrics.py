"""Metric rules: how a training metric is reduced over a chunk, whether it may be NaN, its label.

The part that produces a metric declares its rule (an algorithm through
`rlx.algorithm.Algorithm.metric_rules`, an environment through its ``episode_metrics`` and
optional ``metric_labels`` attributes); the runner and the tables read the rules and never
match metric names against patterns. A metric without a declared rule is a plain mean over the
updates of a chunk that must stay finite.

Rules of a chunk of ``U`` updates with per-update values ``x_u``:

    mean          (1/U) sum_u x_u
    sum           sum_u x_u                                  (counts, e.g. episodes finished)
    episode_mean  sum_u n_u x_u / sum_u n_u, NaN if sum_u n_u = 0
                  with n_u = the update's ``EPISODES`` count (x_u is a mean over those episodes)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp

EPISODES = "train/episodes"
"""The number of episodes that finished in an update: the weight of every episode mean."""

Reduce = Literal["mean", "sum", "episode_mean"]


@dataclasses.dataclass(frozen=True)
class MetricRule:
    """How one metric is summarised per chunk and shown in tables."""

    reduce: Reduce = "mean"
    label: str | None = None
    """Column label in tables and plots (None: the metric's name)."""
    percent: bool = False
    """A share in [0, 1], shown as a percentage."""
    allow_nan: bool = False
    """NaN is no failure (e.g. a statistic over an empty bin)."""

    @property
    def may_be_nan(self) -> bool:
        """Episode means are NaN for a chunk in which no episode finished, and metrics that allow
        NaN may be NaN; neither is a failure."""
        return self.allow_nan or self.reduce == "episode_mean"


DEFAULT = MetricRule()


def episode_rules(outcomes: Mapping[str, MetricRule]) -> dict[str, MetricRule]:
    """Rules of the training metrics every env-stepping algorithm reports: the episode count,
    the mean episode return and the mean of each episode outcome (``train/episode_<name>``;
    `outcomes` are the env's, see `rlx.envs.outcome_rules`)."""
    rules = {
        EPISODES: MetricRule("sum", "train episodes"),
        "train/episode_return": MetricRule("episode_mean", "train return"),
    }
    for name, rule in outcomes.items():
        label = f"train {rule.label or name}"
        rules[f"train/episode_{name}"] = MetricRule("episode_mean", label, rule.percent)
    return rules


def eval_rules(outcomes: Mapping[str, MetricRule]) -> dict[str, MetricRule]:
    """Rules of the evaluation metrics (`rlx.evaluation.evaluate`): the return and each outcome."""
    rules = {"eval/return": MetricRule(label="return")}
    for name, rule in outcomes.items():
        rules[f"eval/{name}"] = MetricRule("mean", rule.label or name, rule.percent)
    return rules


def from_json(data: Mapping[str, Mapping[str, Any]]) -> dict[str, MetricRule]:
    """Rules as stored in a run record (`as_json`)."""
    return {k: MetricRule(v.get("reduce", "mean"), v.get("label"), v.get("percent", False),
                          v.get("allow_nan", False))
            for k, v in data.items()}  # fmt: skip


def aggregate(
    metrics: Mapping[str, jax.Array], rules: Mapping[str, MetricRule]
) -> dict[str, jax.Array]:
    """A chunk's summary of stacked per-update metrics (leading axis: updates), by each metric's
    rule (see the module docstring)."""
    weights = metrics.get(EPISODES)
    out = {}
    for key, value in metrics.items():
        rule = rules.get(key, DEFAULT)
        if rule.reduce == "sum":
            out[key] = value.sum()
        elif rule.reduce == "episode_mean":
            if weights is None:
                raise ValueError(f"episode mean {key!r} needs the {EPISODES!r} count metric.")
            total = weights.sum()
            out[key] = jnp.where(
                total > 0, (value * weights).sum() / jnp.maximum(total, 1), jnp.nan
            )
        else:
            out[key] = value.mean()
    return out


def as_json(rules: Mapping[str, MetricRule]) -> dict[str, dict[str, Any]]:
    """The rules as JSON-ready data (stored in run records, read by tables)."""
    out = {}
    for k, r in sorted(rules.items()):
        out[k] = {"reduce": r.reduce, "label": r.label, "percent": r.percent}
        if r.allow_nan:  # absent otherwise, so earlier records read back unchanged
            out[k]["allow_nan"] = True
    return out


def episode_summary(done: jax.Array, ends: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Training metrics of the episodes that ended during a rollout, shared by every
    env-stepping algorithm.

    ``done`` and each ``ends`` value (the episode's return, each outcome, as read at its last
    step) have the same shape, e.g. ``[T, N]``. With ``n = sum done``::

        train/episodes        n
        train/episode_<key>   sum(done * ends[key]) / max(n, 1)    (0 when no episode ended)

    The chunk summary weights each episode mean by ``train/episodes`` (`episode_rules`).
    """
    count = done.sum()
    out = {EPISODES: count}
    for key, value in ends.items():
        if value.shape != done.shape:
            raise ValueError(f"episode value {key!r} has shape {value.shape}, done {done.shape}.")
        out[f"train/episode_{key}"] = (done * value).sum() / jnp.maximum(count, 1.0)
    return out
