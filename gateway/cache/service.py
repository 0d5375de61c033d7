"""Build the cache stage the settings ask for, over accounting's Redis client when shared."""

from __future__ import annotations

from decimal import Decimal

from gateway.accounting.prices import token_usage
from gateway.accounting.service import Accounting
from gateway.accounting.stage import price_key
from gateway.cache.backends import CacheBackend, MemoryBackend, RedisBackend
from gateway.cache.stage import CacheStage
from gateway.canonical import Usage
from gateway.errors import ConfigError
from gateway.settings import Settings
from gateway.targets import Target


def open_cache(settings: Settings, accounting: Accounting) -> CacheStage:
    backend: CacheBackend
    if settings.cache_backend == "redis":
        if accounting.redis is None:
            raise ConfigError("STRATA_CACHE_BACKEND=redis needs STRATA_REDIS_URL")
        backend = RedisBackend(accounting.redis)
    else:
        backend = MemoryBackend(settings.cache_memory_bytes)

    def price(target: Target, usage: Usage) -> Decimal | None:
        tokens = token_usage(
            usage.inputTokens,
            usage.outputTokens,
            usage.cacheReadInputTokens or 0,
            usage.cacheWriteInputTokens or 0,
            usage.totalTokens,
        )
        return accounting.prices.cost(price_key(target), tokens).usd

    return CacheStage(backend, price)
