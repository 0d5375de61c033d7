"""The training progress bar (rich): step, loss, tokens/s, time left.

Off a terminal (a pipe, a CI log, a SageMaker job's CloudWatch log) it also prints one plain
``strata-train step=N/TOTAL …`` line every ``log_every`` steps and per eval: SageMaker's metric
definitions (customize/sagemaker/request.py) parse exactly these lines.
"""

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


def metric_line(step: int, total: int, **values: float) -> str:
    fields = " ".join(f"{name}={value:.6g}" for name, value in values.items())
    return f"strata-train step={step}/{total} {fields}"


class TrainingProgress:
    def __init__(
        self,
        total_steps: int,
        start_step: int,
        console: Console | None,
        enabled: bool,
        log_every: int = 10,
    ) -> None:
        self._total, self._done, self._every, self._enabled = (
            total_steps, start_step, max(1, log_every), enabled
        )  # fmt: skip
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

    def _plain(self, line: str) -> None:
        console = self._progress.console
        if self._enabled and not console.is_terminal:
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    def step(self, loss: float, tokens_per_s: float) -> None:
        self._done += 1
        self._progress.update(
            self._task, advance=1, loss=f"{loss:.4f}", rate=f"{tokens_per_s:,.0f}"
        )
        if self._done % self._every == 0 or self._done == self._total:
            self._plain(metric_line(self._done, self._total, loss=loss, tokens_per_s=tokens_per_s))

    def evaluated(self, eval_loss: float) -> None:
        self._progress.update(self._task, eval=f"{eval_loss:.4f}")
        self._plain(metric_line(self._done, self._total, eval_loss=eval_loss))

    def note(self, text: str) -> None:
        self._progress.console.print(text)
