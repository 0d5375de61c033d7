"""The cache stage, between admit and attempt: serve a stored answer, or make the call once
(single-flight) and store what came back.

``x-strata-cache`` says what happened: ``hit`` (from the cache, or from an identical call in
flight: no upstream call), ``semantic-hit`` (a near-duplicate's stored answer, semantic.py;
``x-strata-cache-similarity`` gives the cosine), ``miss`` (looked up, not found, answer
stored), ``bypass`` (not looked up: the route has no cache, temperature above 0,
``no-store``, or ``no-cache``, which still refreshes the entry); the observability record reads
the same value. A hit sets ``call.context["cache_hit"]``, which the ledger records with the
cost the call would have had. Streams are stored as their events once they end well and
replayed as a stream; a stream cut short or failed is never stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from gateway.cache.backends import BackendStats, CacheBackend
from gateway.cache.flight import Flights, Landing, abandons, own_copy
from gateway.cache.keys import bypass_reason, cache_key, resolved_targets, tenant_prefix
from gateway.cache.semantic import Query, SemanticCache
from gateway.canonical import ConverseResponse, StreamEvent, Usage
from gateway.errors import StrataError
from gateway.pipeline.call import Call, Plan
from gateway.pipeline.policy import CachePolicy
from gateway.targets import Target, parse_target

log = logging.getLogger("strata.cache")

# What an answer would have cost; None when unknown (no price row).
Pricer = Callable[[Target, Usage], Decimal | None]
Stream = tuple[StreamEvent | None, AsyncGenerator[StreamEvent, None]]


@dataclass
class CacheCounters:
    hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    bypasses: int = 0
    stores: int = 0
    too_large: int = 0  # answers over the route's max_bytes, not stored
    saved_usd: Decimal = Decimal(0)

    def as_json(self, backend: BackendStats, flight_waits: int, name: str) -> dict[str, Any]:
        return {
            "backend": name,
            "hits": self.hits,
            "semantic_hits": self.semantic_hits,
            "misses": self.misses,
            "bypasses": self.bypasses,
            "stores": self.stores,
            "too_large": self.too_large,
            "flight_waits": flight_waits,
            "saved_usd": str(self.saved_usd),
            "entries": backend.entries,
            "bytes": backend.bytes,
            "evictions": backend.evictions,
            "errors": backend.errors,
        }


class CacheStage:
    def __init__(
        self,
        backend: CacheBackend,
        price: Pricer | None = None,
        semantic: SemanticCache | None = None,
    ) -> None:
        self.backend = backend
        self._price = price
        self.semantic = semantic
        self.flights = Flights()
        self.counters = CacheCounters()

    def stats(self) -> dict[str, Any]:
        stats = self.counters.as_json(self.backend.stats(), self.flights.waits, self.backend.name)
        if self.semantic is not None:
            stats["semantic_errors"] = self.semantic.errors
        return stats

    async def flush(self, tenant: str | None) -> int:
        self.flights.forget()
        prefix = tenant_prefix(tenant) if tenant is not None else None
        if self.semantic is not None:
            await self.semantic.index.flush(prefix)
        return await self.backend.flush(prefix)

    async def converse(
        self, call: Call, plan: Plan, fetch: Callable[[], Awaitable[ConverseResponse]]
    ) -> ConverseResponse:
        key = self._key(call, plan)
        if key is None:
            return await fetch()
        found = await self._find(call, key)
        query = None
        if found is None:
            query, found = await self._near(call, plan)
        if found is not None:
            response = ConverseResponse.model_validate(found["response"])
            self._served(call, found, response.usage)
            return response
        flight = self._lead(call, key)
        try:
            response = await fetch()
        except BaseException as exc:
            self._land_error(key, flight, exc)
            raise
        target = call.outcome.target
        entry = self._encode(target, {"response": response.model_dump(mode="json")})
        await self._store(call, plan, key, entry, flight, query)
        return response

    async def open_stream(
        self, call: Call, plan: Plan, open_stream: Callable[[], Awaitable[Stream]]
    ) -> Stream:
        key = self._key(call, plan)
        if key is None:
            return await open_stream()
        found = await self._find(call, key)
        query = None
        if found is None:
            query, found = await self._near(call, plan)
        if found is not None:
            events: list[StreamEvent] = found["events"]
            self._served(call, found, _stream_usage(events))
            return (events[0] if events else None), _replay(events[1:])
        flight = self._lead(call, key)
        try:
            first, rest = await open_stream()
        except BaseException as exc:
            self._land_error(key, flight, exc)
            raise

        async def ended(recorded: list[StreamEvent] | None, error: BaseException | None) -> None:
            if recorded is not None:
                entry = self._encode(call.outcome.target, {"events": recorded})
                await self._store(call, plan, key, entry, flight, query)
            elif error is not None:
                self._land_error(key, flight, error)
            else:
                self._land(key, flight, Landing())

        return first, _Recorder(first, rest, ended)

    # -- the steps ----------------------------------------------------------------------------

    def _key(self, call: Call, plan: Plan) -> str | None:
        """The entry's key, or None (and ``bypass``) when the cache is not read."""
        reason = bypass_reason(call, plan.policy.cache)
        refresh = reason is None and call.hints.cache == "no-cache"
        if reason is not None or refresh:
            call.outcome.cache = "bypass"
            self.counters.bypasses += 1
            if not refresh:
                return None
            call.context["cache_refresh"] = True
        return cache_key(call, plan)

    async def _near(self, call: Call, plan: Plan) -> tuple[Query | None, dict[str, Any] | None]:
        """A near-duplicate's entry (semantic routes only), and the query to remember this
        call's answer under."""
        if self.semantic is None or plan.policy.semantic_cache is None:
            return None, None
        query = self.semantic.query(call, plan, resolved_targets(plan))
        if query is None or call.context.get("cache_refresh"):
            return query, None
        found = await self.semantic.find(query)
        if found is None:
            return query, None
        key, similarity = found
        raw = await self.backend.get(key)
        entry = _decode(raw, key) if raw is not None else None
        if entry is None:  # its answer expired or was flushed
            await self.semantic.forget(query, key)
            return query, None
        call.context["cache_similarity"] = similarity
        return query, entry

    async def _find(self, call: Call, key: str) -> dict[str, Any] | None:
        """A stored entry, or the answer of an identical call in flight; None: this call leads."""
        if call.context.get("cache_refresh"):
            return None
        while True:
            looked_at = time.monotonic()
            raw = await self.backend.get(key)
            if raw is not None:
                entry = _decode(raw, key)
                if entry is not None:
                    return entry
            flight = self.flights.current(key, looked_at)
            if flight is None:
                return None
            landing = await self.flights.wait(call, flight)
            if landing.error is not None:
                raise own_copy(landing.error)
            if landing.entry is not None:
                entry = _decode(landing.entry, key)
                if entry is not None:
                    return entry
            # Abandoned, or its answer was not storable: look again, perhaps lead.

    def _lead(self, call: Call, key: str) -> Any:
        if call.outcome.cache is None:
            call.outcome.cache = "miss"
            self.counters.misses += 1
        if call.context.get("cache_refresh"):
            return None  # a refresh does not make identical calls wait on it
        return self.flights.lead(key)

    def _served(self, call: Call, entry: dict[str, Any], usage: Usage | None) -> None:
        outcome = call.outcome
        call.context["cache_hit"] = True
        if "cache_similarity" in call.context:
            outcome.cache = "semantic-hit"
            self.counters.semantic_hits += 1
        else:
            outcome.cache = "hit"
            self.counters.hits += 1
        target = entry.get("target")
        outcome.target = parse_target(target) if isinstance(target, str) else None
        if self._price is not None and outcome.target is not None and usage is not None:
            saved = self._price(outcome.target, usage)
            if saved is not None:
                self.counters.saved_usd += saved

    def _encode(self, target: Target | None, body: dict[str, Any]) -> bytes:
        return orjson.dumps({"v": 1, "target": str(target) if target else None, **body})

    async def _store(
        self, call: Call, plan: Plan, key: str, entry: bytes, flight: Any, query: Query | None
    ) -> None:
        policy: CachePolicy | None = plan.policy.cache
        assert policy is not None
        if len(entry) > policy.max_bytes:
            self.counters.too_large += 1
            if flight is not None:  # the waiters still get it, once
                self.flights.land(key, flight, Landing(entry=entry), recent=False)
            return
        if call.hints.cache != "no-store":
            await self.backend.set(key, entry, policy.ttl_s)
            self.counters.stores += 1
            if query is not None and self.semantic is not None:
                await self.semantic.remember(query, key, policy.ttl_s)
        if flight is not None:
            self.flights.land(key, flight, Landing(entry=entry))

    def _land_error(self, key: str, flight: Any, exc: BaseException) -> None:
        if flight is None:
            return
        if abandons(exc) or not isinstance(exc, StrataError):
            self.flights.land(key, flight, Landing())
        else:
            self.flights.land(key, flight, Landing(error=exc))

    def _land(self, key: str, flight: Any, landing: Landing) -> None:
        if flight is not None:
            self.flights.land(key, flight, landing)


def _decode(raw: bytes, key: str) -> dict[str, Any] | None:
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError:
        entry = None
    if not isinstance(entry, dict) or entry.get("v") != 1:
        log.warning("cache entry %s is not readable; treated as a miss", key)
        return None
    return entry


def _stream_usage(events: list[StreamEvent]) -> Usage | None:
    for event in reversed(events):
        metadata = event.get("metadata")
        if metadata is not None and "usage" in metadata:
            return Usage.model_validate(metadata["usage"])
    return None


async def _replay(events: list[StreamEvent]) -> AsyncGenerator[StreamEvent, None]:
    for event in events:
        yield event


Ended = Callable[[list[StreamEvent] | None, BaseException | None], Awaitable[None]]


class _Recorder(AsyncGenerator[StreamEvent, None]):
    """Passes a stream on and keeps its events; reports once how it ended: every event (it
    finished), or none (an error, or closed early: even before its first ``anext``, which a
    generator function could not see)."""

    def __init__(
        self, first: StreamEvent | None, rest: AsyncGenerator[StreamEvent, None], ended: Ended
    ) -> None:
        self._events: list[StreamEvent] = [first] if first is not None else []
        self._rest = rest
        self._ended: Ended | None = ended

    async def _end(self, events: list[StreamEvent] | None, error: BaseException | None) -> None:
        ended, self._ended = self._ended, None
        if ended is not None:
            await ended(events, error)

    async def __anext__(self) -> StreamEvent:
        try:
            event = await anext(self._rest)
        except StopAsyncIteration:
            await self._end(self._events, None)
            raise
        except BaseException as exc:
            await self._end(None, exc)
            raise
        self._events.append(event)
        return event

    async def asend(self, value: None) -> StreamEvent:
        return await self.__anext__()

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> StreamEvent:
        await self.aclose()
        raise typ if val is None else val

    async def aclose(self) -> None:
        try:
            await self._rest.aclose()
        finally:
            await self._end(None, None)
