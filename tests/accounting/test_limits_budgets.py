"""Rate limits and budget counters, per process and through the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.accounting.budgets import BudgetScope, LocalBudgets, RedisBudgets, no_spend
from gateway.accounting.limits import Check, LocalLimiter, RateLimiter, RedisLimiter
from gateway.accounting.redis_state import RedisState, SharedStateDown
from tests.accounting.conftest import REDIS_URL, PrivateRedis


@pytest.fixture
async def redis_state(redis_prefix: str) -> AsyncIterator[RedisState]:
    state = RedisState(REDIS_URL, redis_prefix)
    yield state
    await state.close()


@pytest.fixture(params=["local", "redis"])
async def limiter(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[RateLimiter]:
    if request.param == "local":
        yield LocalLimiter()
        return
    state = RedisState(REDIS_URL, redis_prefix)
    yield RedisLimiter(state)
    await state.close()


async def test_concurrent_burst_passes_exactly_the_limit(limiter: RateLimiter) -> None:
    checks = [Check("key:k:requests", "requests", 60, 1)]
    decisions = await asyncio.gather(*(limiter.acquire(checks) for _ in range(150)))
    passed = [d for d in decisions if d.allowed]
    assert len(passed) == 60
    refused = [d for d in decisions if not d.allowed]
    assert all(0 < d.retry_after_s <= 61 for d in refused)
    headers = refused[0].headers()
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert headers["x-ratelimit-remaining-requests"] == "0"


async def test_tokens_are_charged_with_the_request_and_corrected(limiter: RateLimiter) -> None:
    def checks(tokens: int) -> list[Check]:
        return [
            Check("key:k:requests", "requests", 1000, 1),
            Check("key:k:tokens", "tokens", 10_000, tokens),
        ]

    assert (await limiter.acquire(checks(6000))).allowed
    refused = await limiter.acquire(checks(6000))
    assert not refused.allowed and refused.refused == 1
    assert refused.headers()["x-ratelimit-remaining-tokens"] == "4000"
    # The call used only 1,000 tokens: the 5,000 released admit the next one.
    await limiter.adjust("key:k:tokens", -5000)
    assert (await limiter.acquire(checks(6000))).allowed
    # A refused call charged nothing on any counter (requests stayed at 2).
    assert (await limiter.acquire([Check("key:k:requests", "requests", 2, 1)])).allowed is False


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


@pytest.fixture(params=["local", "redis"])
async def budgets(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[LocalBudgets | RedisBudgets]:
    if request.param == "local":
        yield LocalBudgets(no_spend)
        return
    state = RedisState(REDIS_URL, redis_prefix)
    yield RedisBudgets(state, no_spend)
    await state.close()


async def test_reservations_never_exceed_the_budget(budgets: LocalBudgets | RedisBudgets) -> None:
    key = BudgetScope("key", "k1", limit_pusd=50 * 100, period="total")
    tenant = BudgetScope("tenant", "acme", limit_pusd=10**9, period="monthly")
    results = await asyncio.gather(*(budgets.reserve([key, tenant], 100) for _ in range(200)))
    assert sum(r is None for r in results) == 50
    refusal = next(r for r in results if r is not None)
    assert refusal.scope == key and refusal.used_pusd == 5000
    # Settling below the worst case releases the difference.
    await budgets.settle([key, tenant], -30 * 100)
    again = await asyncio.gather(*(budgets.reserve([key], 100) for _ in range(40)))
    assert sum(r is None for r in again) == 30


async def test_counters_are_seeded_from_recorded_spend(redis_prefix: str) -> None:
    async def spent(scope: BudgetScope, since: float) -> int:
        return 900 if scope.kind == "key" else 0

    state = RedisState(REDIS_URL, redis_prefix)
    try:
        budgets = RedisBudgets(state, spent)
        key = BudgetScope("key", "k-seeded", 1000, "total")
        assert await budgets.reserve([key], 100) is None
        refused = await budgets.reserve([key], 1)
        assert refused is not None and refused.used_pusd == 1000
    finally:
        await state.close()
    local = LocalBudgets(spent)
    assert await local.reserve([BudgetScope("key", "k", 1000, "total")], 101) is not None


async def test_redis_down_raises_then_recovers(private_redis: PrivateRedis) -> None:
    state = RedisState(private_redis.url, "t:", retry_after_s=0.1)
    limiter = RedisLimiter(state)
    check = [Check("c", "requests", 10, 1)]
    try:
        assert (await limiter.acquire(check)).allowed
        private_redis.stop()
        with pytest.raises(SharedStateDown):
            await limiter.acquire(check)
        with pytest.raises(SharedStateDown):  # in its pause: fails at once
            await limiter.acquire(check)
        assert state.errors >= 1
        private_redis.start()
        for _ in range(50):
            try:
                assert (await limiter.acquire(check)).allowed
                break
            except SharedStateDown:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("never recovered")
    finally:
        await state.close()
