"""Where cache entries live, behind one small Protocol: this process (``MemoryBackend``, the
default) or Redis shared by every replica (``RedisBackend``).

Keys are ``<tenant digest>:<request digest>`` (keys.py), so a tenant's entries can be flushed by
prefix without tenant names (which may hold any character) ever reaching a Redis glob pattern.
A backend never raises on a fault: a read that fails is a miss and a write that fails is
dropped, counted in ``errors``; the call goes on to the upstream.
"""

from __future__ import annotations

import contextlib
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cachetools import TLRUCache

from gateway.accounting.redis_state import RedisState, SharedStateDown

log = logging.getLogger("strata.cache")

# What an entry costs the memory bound beyond its bytes (key, tuple, dict slot), roughly.
ENTRY_OVERHEAD = 200


@dataclass
class BackendStats:
    entries: int = 0
    bytes: int = 0  # memory: held now; redis: compressed bytes written since start
    evictions: int = 0  # memory only: entries dropped to stay within the byte bound
    errors: int = 0  # redis only: reads or writes that found Redis unreachable


class CacheBackend(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def flush(self, prefix: str | None) -> int:
        """Drop every entry (or those whose key starts with ``prefix``); how many went."""
        ...

    def stats(self) -> BackendStats: ...


class _CountingTLRU(TLRUCache[str, tuple[bytes, float]]):
    """A TLRU cache that counts the entries it drops to make room (not the expired ones)."""

    evictions = 0

    def popitem(self) -> tuple[str, tuple[bytes, float]]:
        item = super().popitem()
        self.evictions += 1
        return item


class MemoryBackend:
    """TTL per entry and least-recently-used eviction within ``max_bytes``."""

    name = "memory"

    def __init__(self, max_bytes: int, timer: Callable[[], float] = time.monotonic) -> None:
        self._cache = _CountingTLRU(
            maxsize=max_bytes,
            ttu=lambda _key, value, now: now + value[1],
            timer=timer,
            getsizeof=lambda value: len(value[0]) + ENTRY_OVERHEAD,
        )

    async def get(self, key: str) -> bytes | None:
        found = self._cache.get(key)
        return found[0] if found is not None else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        with contextlib.suppress(ValueError):  # larger than the whole cache: not kept
            self._cache[key] = (value, ttl_s)

    async def flush(self, prefix: str | None) -> int:
        doomed = [k for k in list(self._cache.keys()) if prefix is None or k.startswith(prefix)]
        for key in doomed:
            self._cache.pop(key, None)
        return len(doomed)

    def stats(self) -> BackendStats:
        self._cache.expire()
        return BackendStats(len(self._cache), int(self._cache.currsize), self._cache.evictions)


class RedisBackend:
    """Entries as zlib-compressed strings with their own expiry (``SET … PX``), under
    ``<STRATA_REDIS_PREFIX>cache:``; through accounting's Redis client and its fault pause."""

    name = "redis"

    def __init__(self, redis: RedisState) -> None:
        self._redis = redis
        self._stats = BackendStats()

    def _key(self, key: str) -> str:
        return self._redis.key("cache", key)

    async def _run(self, call: Callable[[], Any]) -> Any:
        try:
            return await self._redis.run(call)
        except SharedStateDown:
            self._stats.errors += 1
            return None

    async def get(self, key: str) -> bytes | None:
        raw = await self._run(lambda: self._redis.client.get(self._key(key)))
        if raw is None:
            return None
        try:
            return zlib.decompress(raw)
        except zlib.error:
            log.warning("cache entry %s is not a compressed value; ignored", key)
            return None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        packed = zlib.compress(value, 1)  # level 1: most of the gain for a fraction of the CPU
        ms = max(1, int(ttl_s * 1000))
        if await self._run(lambda: self._redis.client.set(self._key(key), packed, px=ms)):
            self._stats.entries += 1
            self._stats.bytes += len(packed)

    async def flush(self, prefix: str | None) -> int:
        # Prefixes are hex digests and ":" only, so they are safe inside a glob pattern.
        pattern = self._key((prefix or "") + "*")
        client = self._redis.client

        async def drop() -> int:
            gone = 0
            batch: list[Any] = []
            async for key in client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    gone += int(await client.delete(*batch))
                    batch = []
            if batch:
                gone += int(await client.delete(*batch))
            return gone

        return int(await self._run(drop) or 0)

    def stats(self) -> BackendStats:
        return BackendStats(self._stats.entries, self._stats.bytes, 0, self._stats.errors)
