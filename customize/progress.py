"""Progress display for long waits: a live panel on a terminal, one line per change elsewhere.

Callers describe a state as (label, value) rows; the display decides how to draw them. Piped output
(CI logs, ``tee``) gets a timestamped line only when something other than the clock changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Generic, TypeVar

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

T = TypeVar("T")
Rows = Sequence[tuple[str, str]]


def format_elapsed(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def elapsed_since(start: datetime | None, end: datetime | None, now: datetime) -> str:
    if start is None:
        return "-"
    aware = start if start.tzinfo else start.replace(tzinfo=UTC)
    stop = end if end is not None else now
    stop = stop if stop.tzinfo else stop.replace(tzinfo=UTC)
    return format_elapsed(stop - aware)


def _without_clock(rows: Rows) -> object:
    """What counts as a change worth a new line: everything but the elapsed time."""
    return tuple(row for row in rows if row[0] != "Elapsed")


def _table(rows: Rows) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    return table


class StatusDisplay(Generic[T]):
    """``with StatusDisplay(console, title, rows) as show: show.update(state)``."""

    def __init__(
        self,
        console: Console,
        title: str,
        rows: Callable[[T, datetime], Rows],
        *,
        steady: Callable[[Rows], object] | None = None,
    ) -> None:
        self._console = console
        self._title = title
        self._rows = rows
        self._steady = steady or _without_clock
        self._live: Live | None = None
        self._last: object = None

    def __enter__(self) -> StatusDisplay[T]:
        if self._console.is_terminal:
            self._live = Live(console=self._console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def update(self, state: T) -> None:
        rows = self._rows(state, datetime.now(UTC))
        if self._live is not None:
            self._live.update(Panel(_table(rows), title=self._title, expand=False))
            return
        key = self._steady(rows)
        if key != self._last:
            self._last = key
            stamp = datetime.now().strftime("%H:%M:%S")
            self._console.print(
                f"{stamp}  " + "  ".join(f"{label}: {value}" for label, value in rows),
                highlight=False,
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, traceback)
