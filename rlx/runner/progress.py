"""A rich progress bar in the algorithm's budget unit (env steps/s, gradient steps/s, ...)."""

from __future__ import annotations


class Progress:
    """Budget units done of `total`, with the rate over training seconds; silent if disabled."""

    def __init__(self, total: int, unit: str, enabled: bool):
        self.enabled = enabled
        self.unit = unit
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} {unit}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self._task = self._progress.add_task("train", total=total, rate="")

    def __enter__(self) -> Progress:
        if self.enabled:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._progress.__exit__(*exc)

    def advance(self, steps: int, train_s: float) -> None:
        """`steps` more units done; the rate is all units done over `train_s` seconds."""
        if self.enabled:
            done = self._progress.tasks[0].completed + steps
            rate = f"{done / max(train_s, 1e-9):,.0f} {self.unit}/s"
            self._progress.update(self._task, completed=done, rate=rate)
