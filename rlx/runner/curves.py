"""Learning curves of a batch of runs, built one evaluation point at a time.

Per run: the budget axis (``env_steps``, ``gradient_steps`` or ``episodes``: the algorithm's
unit) and every metric at every evaluation point; point 0 is before training, so training
metrics (which start after the first chunk) are NaN there. A run whose metric turns NaN/Inf is
marked failed at that point (except metrics whose rule allows NaN, such as episode means of a
chunk in which no episode ended) and its later values are NaN; the other runs go on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from rlx.metrics import DEFAULT, MetricRule


@dataclasses.dataclass
class Curves:
    """Curves and failures of every run of a batch (JSON-ready: checkpointed as they are)."""

    axis: str
    per_run: list[dict[str, list[float]]]
    failures: dict[str, dict[str, Any]]

    @classmethod
    def empty(cls, axis: str, runs: int) -> Curves:
        """No evaluation point yet."""
        return cls(axis, [{} for _ in range(runs)], {})

    def to_json(self) -> dict[str, Any]:
        """For a checkpoint's meta."""
        return {"axis": self.axis, "curves": self.per_run, "failures": self.failures}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Curves:
        """From a checkpoint's meta."""
        return cls(data["axis"], list(data["curves"]), dict(data["failures"]))

    def add_point(
        self,
        ids: list[int],
        steps: int,
        metrics: Mapping[str, np.ndarray],
        rules: Mapping[str, MetricRule],
    ) -> None:
        """Appends one evaluation point (`metrics` leaves: one value per run of `ids`)."""
        for j, i in enumerate(ids):
            curve = self.per_run[i]
            curve.setdefault(self.axis, []).append(steps)
            bad = _first_non_finite(metrics, j, rules)
            if bad is not None and str(i) not in self.failures:
                self.failures[str(i)] = {"steps": steps, "metric": bad}
            failed = str(i) in self.failures
            for key, value in metrics.items():
                curve.setdefault(key, []).append(float("nan") if failed else float(value[j]))

    def aligned(self) -> list[dict[str, list[float]]]:
        """Every curve as long as the budget axis: metrics that start later are NaN-prepended."""
        out = []
        for curve in self.per_run:
            n = len(curve.get(self.axis, []))
            out.append({k: [float("nan")] * (n - len(v)) + list(v) for k, v in curve.items()})
        return out


def _first_non_finite(
    metrics: Mapping[str, np.ndarray], j: int, rules: Mapping[str, MetricRule]
) -> str | None:
    """The first metric that is NaN/Inf for run j and whose rule does not allow it."""
    for key, value in metrics.items():
        if not rules.get(key, DEFAULT).may_be_nan and not np.isfinite(value[j]):
            return key
    return None
