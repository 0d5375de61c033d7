"""Counts over a sliding time window, kept in fixed slots (no per-event memory)."""

from __future__ import annotations

import math


class SlidingCounts:
    """Named counters summed over the last ``window_s`` seconds, in ``slots`` slots.

    Each slot covers ``window_s / slots`` seconds; a slot older than the window is cleared
    when the clock reaches it again, so memory is fixed and the window slides in steps.
    """

    def __init__(self, names: tuple[str, ...], window_s: float, slots: int = 10) -> None:
        if window_s <= 0 or slots < 1:
            raise ValueError("window_s must be > 0 and slots >= 1")
        self._names = names
        self._slot_s = window_s / slots
        self._epochs = [-1] * slots
        self._counts = [[0.0] * len(names) for _ in range(slots)]

    def add(self, now: float, name: str, amount: float = 1.0) -> None:
        self._slot(now)[self._names.index(name)] += amount

    def total(self, now: float, name: str) -> float:
        i = self._names.index(name)
        current = math.floor(now / self._slot_s)
        oldest = current - len(self._epochs) + 1
        return sum(
            counts[i]
            for epoch, counts in zip(self._epochs, self._counts, strict=True)
            if epoch >= oldest
        )

    def clear(self) -> None:
        self._epochs = [-1] * len(self._epochs)

    def _slot(self, now: float) -> list[float]:
        epoch = math.floor(now / self._slot_s)
        i = epoch % len(self._epochs)
        if self._epochs[i] != epoch:
            self._epochs[i] = epoch
            self._counts[i] = [0.0] * len(self._names)
        return self._counts[i]
