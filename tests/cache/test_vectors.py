"""The semantic cache's vector stores: bounded per scope (oldest dropped), scopes apart, flush
by tenant prefix; Redis with the real server, and a stopped Redis is a miss, not an error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from gateway.accounting.redis_state import RedisState
from gateway.cache.vectors import MemoryVectors, RedisVectors, VectorIndex
from tests.accounting.conftest import REDIS_URL, redis_namespace


def unit(i: int, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[i % dim] = 1.0
    return v


@pytest.fixture(params=["memory", "redis"])
def index(request: pytest.FixtureRequest) -> Iterator[VectorIndex]:
    if request.param == "memory":
        yield MemoryVectors()
        return
    with redis_namespace() as prefix:
        yield RedisVectors(RedisState(REDIS_URL, prefix))


def test_search_bound_and_flush(index: VectorIndex) -> None:
    async def run() -> None:
        for i in range(5):
            await index.add("t1:s", f"k{i}", unit(i), max_entries=3, ttl_s=60)
        await index.add("t2:s", "other", unit(0), max_entries=3, ttl_s=60)
        # k0 and k1 were dropped (bound 3, oldest first): unit(0) now matches nothing in t1.
        found = await index.search("t1:s", unit(0))
        assert found is not None and found[1] < 0.5
        assert await index.search("t1:s", unit(4)) == ("k4", pytest.approx(1.0))
        assert await index.search("t2:s", unit(0)) == ("other", pytest.approx(1.0))
        await index.drop("t1:s", "k4")
        found = await index.search("t1:s", unit(4))
        assert found is None or found[0] != "k4"
        assert await index.flush("t1:") == 2
        assert await index.search("t1:s", unit(3)) is None
        assert await index.search("t2:s", unit(0)) is not None  # another tenant's scope stays

    asyncio.run(run())


def test_redis_down_is_a_miss() -> None:
    down = RedisVectors(RedisState("redis://127.0.0.1:1", "x:", timeout_s=0.5))

    async def run() -> None:
        await down.add("s", "k", unit(0), max_entries=3, ttl_s=60)
        assert await down.search("s", unit(0)) is None

    asyncio.run(run())
    assert down.errors == 2
