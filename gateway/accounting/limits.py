"""Requests and tokens per minute, per key and per tenant.

A sliding window of one-second buckets: a call passes when the last 61 buckets (every bucket
that overlaps the past 60 s) plus its own cost stay within the limit, so no 60-second span ever
sees more than the limit. With Redis the check-and-add for all of a call's counters is one Lua
script (atomic across replicas, Redis's clock); without Redis the same arithmetic runs per
process. A token cost is an estimate at admission, corrected to the reported usage at settle.
The Redis script lives in ``counters.py``, where it shares one round trip with the budget's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

WINDOW_S = 60
Unit = Literal["requests", "tokens"]


@dataclass(frozen=True)
class Check:
    counter: str  # e.g. "key:key_1a2b:tokens"
    unit: Unit
    limit: int
    cost: int


@dataclass
class Decision:
    allowed: bool
    checks: list[Check]
    used: list[int] = field(default_factory=list)  # per check, before this call
    refused: int | None = None  # index of the check that refused
    retry_after_s: float = 0.0

    def headers(self) -> dict[str, str]:
        """OpenAI-style ``x-ratelimit-*`` headers for the tightest counter of each unit."""
        out: dict[str, str] = {}
        for unit in ("requests", "tokens"):
            best: tuple[int, int] | None = None
            for i, check in enumerate(self.checks):
                if check.unit != unit:
                    continue
                used = self.used[i] if i < len(self.used) else 0
                taken = check.cost if self.allowed else 0
                remaining = max(0, check.limit - used - taken)
                if best is None or remaining < best[1]:
                    best = (check.limit, remaining)
            if best is not None:
                reset = self.retry_after_s if not self.allowed else WINDOW_S
                out[f"x-ratelimit-limit-{unit}"] = str(best[0])
                out[f"x-ratelimit-remaining-{unit}"] = str(best[1])
                out[f"x-ratelimit-reset-{unit}"] = f"{max(reset, 0):.0f}s"
        return out


def retry_after(buckets: list[tuple[int, int]], used: int, check: Check, now: float) -> float:
    if check.cost > check.limit:
        return float(WINDOW_S)  # can never pass; the caller says why
    need = used + check.cost - check.limit
    freed = 0
    for second, count in sorted(buckets):
        freed += count
        if freed >= need:
            return max(0.0, second + WINDOW_S + 1 - now)
    return float(WINDOW_S)


class LocalLimiter:
    """Per-process counters: the embedded default, or a gateway without Redis."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buckets: dict[str, dict[int, int]] = {}

    def _now(self) -> float:
        return self._clock()

    def _live(self, counter: str, second: int) -> dict[int, int]:
        buckets = self._buckets.setdefault(counter, {})
        for old in [s for s in buckets if s < second - WINDOW_S]:
            del buckets[old]
        return buckets

    async def acquire(self, checks: list[Check]) -> Decision:
        now = self._now()
        second = math.floor(now)
        used: list[int] = []
        for i, check in enumerate(checks):
            buckets = self._live(check.counter, second)
            total = sum(buckets.values())
            used.append(total)
            if total + check.cost > check.limit:
                retry = retry_after(list(buckets.items()), total, check, now)
                return Decision(False, checks, used, i, retry)
        for check in checks:
            buckets = self._buckets[check.counter]
            buckets[second] = buckets.get(second, 0) + check.cost
        return Decision(True, checks, used)

    async def adjust(self, counter: str, delta: int) -> None:
        second = math.floor(self._now())
        buckets = self._live(counter, second)
        buckets[second] = buckets.get(second, 0) + delta
