"""Rate limits and budget counters, per process and through the real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gateway.accounting.budgets import BudgetScope, LocalBudgets, no_spend
from gateway.accounting.counters import Counters, LocalCounters, RedisCounters
from gateway.accounting.limits import Check, LocalLimiter
from gateway.accounting.redis_state import RedisState, SharedStateDown
from tests.accounting.conftest import REDIS_URL, PrivateRedis


@pytest.fixture(params=["local", "redis"])
async def counters(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Counters]:
    if request.param == "local":
        yield LocalCounters(no_spend)
        return
    state = RedisState(REDIS_URL, redis_prefix)
    yield RedisCounters(state, no_spend)
    await state.close()


async def admit(
    counters: Counters,
    checks: list[Check],
    scopes: list[BudgetScope] | None = None,
    amount: int = 0,
) -> bool:
    return (await counters.admit(checks, scopes or [], amount, time.time())).allowed


async def test_concurrent_burst_passes_exactly_the_limit(counters: Counters) -> None:
    checks = [Check("key:k:requests", "requests", 60, 1)]
    results = await asyncio.gather(
        *(counters.admit(checks, [], 0, time.time()) for _ in range(150))
    )
    assert sum(r.allowed for r in results) == 60
    refused = [r.limits for r in results if not r.allowed]
    assert all(0 < d.retry_after_s <= 61 for d in refused)
    headers = refused[0].headers()
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert headers["x-ratelimit-remaining-requests"] == "0"


async def test_tokens_are_charged_with_the_request_and_corrected(counters: Counters) -> None:
    def checks(tokens: int) -> list[Check]:
        return [
            Check("key:k:requests", "requests", 1000, 1),
            Check("key:k:tokens", "tokens", 10_000, tokens),
        ]

    assert await admit(counters, checks(6000))
    refused = await counters.admit(checks(6000), [], 0, time.time())
    assert not refused.allowed and refused.limits.refused == 1
    assert refused.limits.headers()["x-ratelimit-remaining-tokens"] == "4000"
    # The call used only 1,000 tokens: the 5,000 released admit the next one.
    await counters.settle(["key:k:tokens"], -5000, [], 0, time.time())
    await counters.drain()
    assert await admit(counters, checks(6000))
    # The refused call took nothing: two requests counted, so a limit of 2 is full now.
    assert not await admit(counters, [Check("key:k:requests", "requests", 2, 1)])


async def test_local_window_slides() -> None:
    now = [1000.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    check = [Check("c", "requests", 2, 1)]
    assert (await limiter.acquire(check)).allowed
    now[0] += 30
    assert (await limiter.acquire(check)).allowed
    refused = await limiter.acquire(check)
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(31.0)  # the first bucket leaves at 1061
    now[0] += 31
    assert (await limiter.acquire(check)).allowed
    assert not (await limiter.acquire(check)).allowed


async def test_reservations_never_exceed_the_budget(counters: Counters) -> None:
    key = BudgetScope("key", "k1", limit_pusd=50 * 100, period="total")
    tenant = BudgetScope("tenant", "acme", limit_pusd=10**9, period="monthly")
    at = time.time()
    results = await asyncio.gather(
        *(counters.admit([], [key, tenant], 100, at) for _ in range(200))
    )
    assert sum(r.allowed for r in results) == 50
    refusal = next(r.budget for r in results if r.budget is not None)
    assert refusal.scope == key and refusal.used_pusd == 5000
    # Settling below the worst case releases the difference.
    await counters.settle([], 0, [key, tenant], -30 * 100, at)
    await counters.drain()
    again = await asyncio.gather(*(counters.admit([], [key], 100, at) for _ in range(40)))
    assert sum(r.allowed for r in again) == 30


async def test_a_call_refused_by_its_budget_takes_no_rate_limit(counters: Counters) -> None:
    requests = [Check("key:k2:requests", "requests", 3, 1)]
    broke = [BudgetScope("key", "k2", limit_pusd=10, period="total")]
    for _ in range(5):
        result = await counters.admit(requests, broke, 100, time.time())
        assert result.limits.allowed and result.budget is not None
    for _ in range(3):
        assert await admit(counters, requests)
    assert not await admit(counters, requests)


async def test_counters_are_seeded_from_recorded_spend(redis_prefix: str) -> None:
    async def spent(scope: BudgetScope, since: float) -> int:
        return 900 if scope.kind == "key" else 0

    state = RedisState(REDIS_URL, redis_prefix)
    try:
        shared = RedisCounters(state, spent)
        key = BudgetScope("key", "k-seeded", 1000, "total")
        tenant = BudgetScope("tenant", "t-seeded", 1000, "monthly")
        assert await admit(shared, [], [key, tenant], 100)
        refused = await shared.admit([], [key], 1, time.time())
        assert refused.budget is not None and refused.budget.used_pusd == 1000
    finally:
        await state.close()
    local = LocalBudgets(spent)
    assert await local.reserve([BudgetScope("key", "k", 1000, "total")], 101) is not None


async def test_redis_down_raises_then_recovers(private_redis: PrivateRedis) -> None:
    state = RedisState(private_redis.url, "t:", retry_after_s=0.1)
    shared = RedisCounters(state, no_spend)
    check = [Check("c", "requests", 10, 1)]
    try:
        assert await admit(shared, check)
        private_redis.stop()
        with pytest.raises(SharedStateDown):
            await admit(shared, check)
        with pytest.raises(SharedStateDown):  # in its pause: fails at once
            await admit(shared, check)
        assert state.errors >= 1
        private_redis.start()
        for _ in range(50):
            try:
                assert await admit(shared, check)
                break
            except SharedStateDown:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("never recovered")
    finally:
        await state.close()


def _commands(url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}


async def test_corrections_ride_with_the_next_admission(private_redis: PrivateRedis) -> None:
    """Issue 17: each settle correction cost a pipeline of its own and, before it, redis-py's
    SCRIPT EXISTS round trip; now it goes in the next admission's pipeline, ahead of its check
    (so the check sees it), and a script Redis lost (SCRIPT FLUSH) is loaded again."""
    state = RedisState(private_redis.url, "t:")
    shared = RedisCounters(state, no_spend)
    scope = BudgetScope("key", "k", 1000, "total")
    tokens = [Check("key:k:tokens", "tokens", 10_000, 600)]
    try:
        assert (await shared.admit(tokens, [scope], 600, time.time())).allowed
        before = _commands(private_redis.url)
        for _ in range(20):
            # 600 of 1,000 reserved: the next call fits only once the first spent 100.
            assert (await shared.admit(tokens, [scope], 600, time.time())).budget is not None
            await shared.settle(["key:k:tokens"], -500, [scope], -500, time.time())
            admitted = await shared.admit(tokens, [scope], 600, time.time())
            assert admitted.allowed, admitted
            await shared.settle(["key:k:tokens"], -100, [scope], -100, time.time())
        after = _commands(private_redis.url)
        assert after.get("script|exists", 0) == before.get("script|exists", 0)
        # 40 admissions and 39 corrections (the last one waits), each one script call.
        assert after["evalsha"] - before["evalsha"] == 79
        await state.client.script_flush()
        await shared.settle(["key:k:tokens"], -500, [scope], -500, time.time())
        assert (await shared.admit(tokens, [scope], 600, time.time())).allowed
        # With no admission to carry it, a correction still goes out on its own.
        await shared.settle(["key:k:tokens"], -500, [scope], -500, time.time())
        await asyncio.sleep(0.3)
        # 600 outstanding after the loop; -500, +600 (admitted), -500.
        assert int(await state.client.get("t:budget:key:k:total") or 0) == 200
    finally:
        await shared.drain()
        await state.close()
