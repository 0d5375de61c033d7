"""Hard USD budgets per key and per tenant: reserve the worst case, settle to the actual.

A counter holds spend plus outstanding reservations, in pico-USD. ``reserve`` adds a call's
worst-case cost to every counter it is subject to only if none would exceed its limit, in one
step: one Lua script with Redis (atomic across replicas), a lock without. ``settle`` adds
``actual - reserved`` (negative: the difference is released). A counter that does not exist
yet (first use, a monthly period's start, a Redis that lost its data) is seeded from the
ledger's recorded spend for the period. The Redis script lives in ``counters.py``, where it
shares one round trip with the rate limits'.

A process that dies between reserve and settle leaves its reservation counted: budgets err
towards refusing, never towards overspending.
"""

from __future__ import annotations

import asyncio
import calendar
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.accounting.keys import Period


@dataclass(frozen=True)
class BudgetScope:
    kind: str  # "key" | "tenant"
    id: str
    limit_pusd: int
    period: Period

    def counter(self, now: float) -> str:
        if self.period == "monthly":
            month = datetime.fromtimestamp(now, UTC).strftime("%Y-%m")
            return f"{self.kind}:{self.id}:{month}"
        return f"{self.kind}:{self.id}:total"

    def since(self, now: float) -> float:
        """Start of the period (epoch seconds), for seeding from the ledger."""
        if self.period == "total":
            return 0.0
        day = datetime.fromtimestamp(now, UTC)
        return datetime(day.year, day.month, 1, tzinfo=UTC).timestamp()

    def ttl_s(self, now: float) -> int:
        """How long the counter must live: to the end of its month plus a week; 0 = forever."""
        if self.period == "total":
            return 0
        day = datetime.fromtimestamp(now, UTC)
        last = calendar.monthrange(day.year, day.month)[1]
        end = datetime(day.year, day.month, last, 23, 59, 59, tzinfo=UTC).timestamp()
        return int(end - now) + 7 * 86400


@dataclass(frozen=True)
class Refusal:
    scope: BudgetScope
    used_pusd: int


# Spend already recorded for a scope since a time (the ledger's sum), in pico-USD.
SpentFn = Callable[[BudgetScope, float], Awaitable[int]]


class LocalBudgets:
    """Counters in this process, under a lock; seeded from the ledger on first use."""

    def __init__(self, spent: SpentFn) -> None:
        self._spent = spent
        self._lock = threading.Lock()
        self._used: dict[str, int] = {}

    async def reserve(self, scopes: list[BudgetScope], amount_pusd: int) -> Refusal | None:
        now = time.time()
        names = [s.counter(now) for s in scopes]
        for scope, name in zip(scopes, names, strict=True):
            if name not in self._used:
                seed = await self._spent(scope, scope.since(now))
                with self._lock:
                    self._used.setdefault(name, seed)
        with self._lock:
            for scope, name in zip(scopes, names, strict=True):
                if self._used[name] + amount_pusd > scope.limit_pusd:
                    return Refusal(scope, self._used[name])
            for name in names:
                self._used[name] += amount_pusd
        return None

    async def settle(
        self, scopes: list[BudgetScope], delta_pusd: int, at: float | None = None
    ) -> None:
        now = time.time() if at is None else at
        with self._lock:
            for scope in scopes:
                name = scope.counter(now)
                if name in self._used:
                    self._used[name] += delta_pusd


async def no_spend(scope: BudgetScope, since: float) -> int:
    """A ``SpentFn`` for tests and for stores without a ledger: nothing spent yet."""
    await asyncio.sleep(0)
    return 0
