"""Build the cache stage the settings ask for, over accounting's Redis client when shared."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.accounting.prices import token_usage
from gateway.accounting.service import Accounting
from gateway.accounting.stage import price_key
from gateway.cache.backends import CacheBackend, MemoryBackend, RedisBackend
from gateway.cache.embedders import BedrockEmbedder, Embedder, Invoke, LocalEmbedder
from gateway.cache.semantic import SemanticCache
from gateway.cache.stage import CacheStage
from gateway.cache.vectors import MemoryVectors, RedisVectors, VectorIndex
from gateway.canonical import Usage
from gateway.errors import ConfigError
from gateway.settings import Settings
from gateway.targets import Target


def open_cache(
    settings: Settings, accounting: Accounting, invoke: Invoke | None = None
) -> CacheStage:
    """``invoke``: the Bedrock provider's InvokeModel, for ``embedder: bedrock:<model>``."""
    backend: CacheBackend
    index: VectorIndex
    if settings.cache_backend == "redis":
        if accounting.redis is None:
            raise ConfigError("STRATA_CACHE_BACKEND=redis needs STRATA_REDIS_URL")
        backend = RedisBackend(accounting.redis)
        index = RedisVectors(accounting.redis)
    else:
        backend = MemoryBackend(settings.cache_memory_bytes)
        index = MemoryVectors()
    embedders: dict[str, Embedder] = {"local": LocalEmbedder()}

    def embedder_for(name: str) -> Embedder:
        found = embedders.get(name)
        if found is None:
            if invoke is None:
                raise ConfigError(f"semantic_cache embedder {name!r} needs a Bedrock provider")
            found = embedders[name] = BedrockEmbedder(invoke, name.partition(":")[2])
        return found

    def price(target: Target, usage: Usage) -> Decimal | None:
        tokens = token_usage(
            usage.inputTokens,
            usage.outputTokens,
            usage.cacheReadInputTokens or 0,
            usage.cacheWriteInputTokens or 0,
            usage.totalTokens,
        )
        return accounting.prices.cost(price_key(target), tokens).usd

    return CacheStage(backend, price, SemanticCache(index, embedder_for))


def invoke_model(providers: Mapping[Any, object]) -> Invoke | None:
    """The Bedrock provider's InvokeModel in the default region, if there is a provider."""
    bedrock = providers.get("bedrock")
    invoke = getattr(bedrock, "invoke_model", None)
    return invoke if callable(invoke) else None
