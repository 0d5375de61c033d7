"""Everything accounting needs at run time, opened and closed by the lifespan."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from gateway.accounting.budgets import BudgetScope
from gateway.accounting.counters import Counters, LocalCounters, RedisCounters
from gateway.accounting.keys import DatabaseKeys, KeyAdmin
from gateway.accounting.ledger import Ledger
from gateway.accounting.prices import PriceOverride, PriceTable
from gateway.accounting.redis_state import RedisState
from gateway.accounting.store import Database
from gateway.accounting.usage import spent_pusd
from gateway.settings import Settings

log = logging.getLogger("strata.accounting")


@dataclass
class Warnings:
    """Warning metrics (also shown by ``GET /admin/accounting``)."""

    unknown_price: int = 0  # calls recorded with a null cost: no price row for the target
    redis_errors: int = 0  # admissions or settles that found Redis unreachable
    served_without_budget: int = 0  # budgeted calls served under on_redis_error: open
    served_without_limits: int = 0  # limited calls served under limits_on_redis_error: open


@dataclass
class Accounting:
    settings: Settings
    db: Database
    keys: DatabaseKeys
    admin: KeyAdmin
    ledger: Ledger
    prices: PriceTable
    shared: Counters  # rate limits and budgets: Redis, or this process
    redis: RedisState | None = None
    warnings: Warnings = field(default_factory=Warnings)

    @classmethod
    async def open(
        cls, stack: AsyncExitStack, settings: Settings, prices: dict[str, PriceOverride]
    ) -> Accounting:
        db = Database(settings.database_url, settings.home)
        stack.callback(db.close)
        await asyncio.to_thread(db.migrate)

        async def spent(scope: BudgetScope, since: float) -> int:
            return await asyncio.to_thread(spent_pusd, db, scope.kind, scope.id, since)

        redis = None
        shared: Counters
        if settings.redis_url:
            redis = RedisState(
                settings.redis_url, settings.redis_prefix, timeout_s=settings.redis_timeout_s
            )
            stack.push_async_callback(redis.close)
            counters = RedisCounters(redis, spent)
            stack.push_async_callback(counters.drain)  # before Redis closes (LIFO)
            shared = counters
        else:
            shared = LocalCounters(spent)
        ledger = Ledger(
            db,
            settings.home,
            flush_interval_s=settings.ledger_flush_interval_s,
            batch_size=settings.ledger_batch_size,
        )
        ledger.start()
        # Closed after the pipeline's settles drained (the exit stack unwinds in reverse).
        stack.push_async_callback(asyncio.to_thread, ledger.close)
        keys = DatabaseKeys(db, settings.keys_refresh_s)
        await keys.start()
        stack.push_async_callback(keys.stop)
        log.info(
            "accounting: %s; limits and budgets %s",
            db.describe(),
            "shared through Redis" if redis else "per process (no STRATA_REDIS_URL)",
        )
        return cls(settings, db, keys, KeyAdmin(db), ledger, PriceTable(prices), shared, redis)
