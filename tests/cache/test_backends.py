"""The backends and the key, without a gateway: TTL, the byte bound and its evictions, flush by
tenant, Redis values compressed with their own expiry; keys normalised but tenant-scoped."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import pytest
import redis

from gateway.accounting.redis_state import RedisState
from gateway.auth import Principal
from gateway.cache.backends import ENTRY_OVERHEAD, MemoryBackend, RedisBackend
from gateway.cache.flight import Flights, Landing
from gateway.cache.keys import bypass_reason, cache_key, tenant_prefix
from gateway.canonical import ConverseRequest
from gateway.config import load_config
from gateway.errors import ConfigError, InvalidRequest
from gateway.pipeline.call import Call, Hints, Plan
from gateway.pipeline.policy import CachePolicy, RoutePolicy
from gateway.settings import Settings
from gateway.targets import Target, parse_target
from tests.accounting.conftest import REDIS_URL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_entries_expire_after_their_own_ttl() -> None:
    clock = Clock()
    cache = MemoryBackend(10_000, timer=clock)
    await cache.set("a", b"short", ttl_s=1)
    await cache.set("b", b"long", ttl_s=10)
    clock.now += 2
    assert await cache.get("a") is None
    assert await cache.get("b") == b"long"
    clock.now += 9
    assert await cache.get("b") is None


async def test_memory_keeps_within_its_byte_bound_least_recently_used_first() -> None:
    size = 1000 + ENTRY_OVERHEAD
    cache = MemoryBackend(3 * size)
    for key in "abc":
        await cache.set(key, bytes(1000), ttl_s=60)
    assert await cache.get("a") is not None  # a is now the most recently used
    await cache.set("d", bytes(1000), ttl_s=60)
    assert await cache.get("b") is None
    assert {k for k in "acd" if await cache.get(k) is not None} == set("acd")
    stats = cache.stats()
    assert (stats.entries, stats.bytes, stats.evictions) == (3, 3 * size, 1)
    await cache.set("huge", bytes(10 * size), ttl_s=60)  # bigger than the cache: not kept
    assert await cache.get("huge") is None
    assert cache.stats().entries == 3


async def test_memory_flush_by_tenant_prefix() -> None:
    cache = MemoryBackend(100_000)
    acme, globex = tenant_prefix("acme"), tenant_prefix("globex")
    for key in (acme + "1", acme + "2", globex + "1"):
        await cache.set(key, b"x", 60)
    assert await cache.flush(acme) == 2
    assert await cache.get(acme + "1") is None
    assert await cache.get(globex + "1") == b"x"
    assert await cache.flush(None) == 1


async def test_redis_values_are_compressed_with_a_ttl_and_flushed_by_tenant(prefix: str) -> None:
    redis_prefix = prefix
    state = RedisState(REDIS_URL, redis_prefix)
    backend = RedisBackend(state)
    value = b'{"answer": "' + b"la " * 2000 + b'"}'
    acme, globex = tenant_prefix("acme"), tenant_prefix("globex")
    await backend.set(acme + "k1", value, ttl_s=30)
    await backend.set(globex + "k1", value, ttl_s=30)
    assert await backend.get(acme + "k1") == value
    raw = redis.Redis.from_url(REDIS_URL)
    stored = raw.get(f"{redis_prefix}cache:{acme}k1")
    assert stored is not None and len(stored) < len(value) / 10
    assert zlib.decompress(stored) == value
    assert 0 < raw.pttl(f"{redis_prefix}cache:{acme}k1") <= 30_000
    assert await backend.flush(acme) == 1
    assert await backend.get(acme + "k1") is None
    assert await backend.get(globex + "k1") == value
    raw.close()
    await state.close()


async def test_redis_unreachable_is_a_miss_not_an_error() -> None:
    state = RedisState("redis://127.0.0.1:1/0", "x:")  # nothing listens on port 1
    backend = RedisBackend(state)
    await backend.set("k", b"v", 10)
    assert await backend.get("k") is None
    assert backend.stats().errors >= 1
    await state.close()


def _call(tenant: str, body: dict[str, object], stream: bool = False) -> Call:
    return Call(
        "r1",
        Principal(tenant=tenant, key_id="k1"),
        "openai",
        "chat",
        ConverseRequest.model_validate(body),
        stream=stream,
        hints=Hints(),
    )


def _plan(variant: str | None = None, target: str = "bedrock:m") -> Plan:
    return Plan("chat", (parse_target(target),), RoutePolicy(), lambda t: t, variant=variant)


BODY = {
    "messages": [{"role": "user", "content": [{"text": "hi"}]}],
    "inferenceConfig": {"temperature": 0, "maxTokens": 10},
}
REORDERED = {
    "inferenceConfig": {"maxTokens": 10, "temperature": 0, "topP": None},
    "messages": [{"content": [{"text": "hi"}], "role": "user"}],
    "system": None,
}


def test_key_is_normalised_and_scoped() -> None:
    base = cache_key(_call("acme", BODY), _plan())
    assert cache_key(_call("acme", REORDERED), _plan()) == base
    assert base.startswith(tenant_prefix("acme"))
    assert cache_key(_call("globex", BODY), _plan()) != base
    assert cache_key(_call("acme", BODY), _plan(variant="tuned")) != base
    assert cache_key(_call("acme", BODY), _plan(target="bedrock:other")) != base
    assert cache_key(_call("acme", BODY, stream=True), _plan()) != base
    other = {**BODY, "inferenceConfig": {"temperature": 0, "maxTokens": 11}}
    assert cache_key(_call("acme", other), _plan()) != base


def test_key_uses_the_resolved_variant_target() -> None:
    pointing = {"variant:v": Target("bedrock", "m1")}
    plan = Plan("chat", (parse_target("variant:v"),), RoutePolicy(), lambda t: pointing[str(t)])
    first = cache_key(_call("acme", BODY), plan)
    pointing["variant:v"] = Target("bedrock", "m2")  # the variant now points elsewhere
    assert cache_key(_call("acme", BODY), plan) != first


@pytest.mark.parametrize(
    ("temperature", "only_zero", "cached"),
    [(0, True, True), (0.5, True, False), (None, True, False), (0.5, False, True)],
)
def test_temperature_rule(temperature: float | None, only_zero: bool, cached: bool) -> None:
    body: dict[str, object] = {"messages": BODY["messages"]}
    if temperature is not None:
        body["inferenceConfig"] = {"temperature": temperature}
    policy = CachePolicy(only_temperature_zero=only_zero)
    assert (bypass_reason(_call("acme", body), policy) is None) is cached
    assert bypass_reason(_call("acme", body), None) is not None


def test_route_cache_config_and_its_errors(tmp_path: Path) -> None:
    config = tmp_path / "strata.yaml"
    config.write_text(
        "aliases:\n  chat: {targets: [bedrock:m], cache: {ttl_s: 30, max_bytes: 2048}}\n"
        "  plain: bedrock:m\n",
        encoding="utf-8",
    )
    routes = load_config(Settings(home=tmp_path, config=config)).routes()
    assert routes["chat"].policy.cache == CachePolicy(30, 2048, True)
    assert routes["plain"].policy.cache is None
    config.write_text("aliases:\n  chat: {targets: [bedrock:m], cache: {ttl_s: 0}}\n")
    with pytest.raises(ConfigError, match=r"aliases\.chat\.cache\.ttl_s: .*greater than 0"):
        load_config(Settings(home=tmp_path, config=config))
    config.write_text("aliases:\n  chat: {targets: [bedrock:m], cache: {ttl: 5}}\n")
    with pytest.raises(ConfigError, match=r"aliases\.chat\.cache\.ttl: "):
        load_config(Settings(home=tmp_path, config=config))


async def test_a_read_on_its_way_while_the_leader_landed_is_served_by_the_landing() -> None:
    """The race bench.cache found on Redis (2 upstream calls for a burst of 200): a call whose
    cache read began before the leader stored, and ended after it landed, led a new flight."""
    flights = Flights()
    future = flights.lead("k")
    looked_at = time.monotonic()  # this call's read is on its way...
    flights.land("k", future, Landing(entry=b"answer"))  # ...while the leader stores and lands
    found = flights.current("k", looked_at)
    assert found is not None and found.result().entry == b"answer"
    assert flights.current("k", time.monotonic() + 1) is None  # later calls read the cache
    failed = flights.lead("e")
    flights.land("e", failed, Landing(error=InvalidRequest("bad")))
    assert flights.current("e", looked_at) is None  # errors are never kept
