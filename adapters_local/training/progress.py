"""The training progress bar (rich): step, loss, tokens/s, time left."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainingProgress:
    def __init__(
        self, total_steps: int, start_step: int, console: Console | None, enabled: bool
    ) -> None:
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("eval {task.fields[eval]}"),
            TextColumn("{task.fields[rate]} tok/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self._task = self._progress.add_task(
            "train", total=total_steps, completed=start_step, loss="-", eval="-", rate="-"
        )

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def step(self, loss: float, tokens_per_s: float) -> None:
        self._progress.update(
            self._task, advance=1, loss=f"{loss:.4f}", rate=f"{tokens_per_s:,.0f}"
        )

    def evaluated(self, eval_loss: float) -> None:
        self._progress.update(self._task, eval=f"{eval_loss:.4f}")

    def note(self, text: str) -> None:
        self._progress.console.print(text)
