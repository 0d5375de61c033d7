"""Single-flight: concurrent identical cacheable calls of one process make one upstream call.

The first call of a key leads; the others wait on its ``Landing`` (each bounded by its own
deadline) and are served from the leader's entry. A leader that fails passes its error to every
waiter; one that is abandoned (its client went away, or its own deadline passed) lets the
waiters go on, the first of them leading a new flight. Across replicas there is no flight: each
process makes at most one call per key at a time, and the shared cache serves the rest.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from cachetools import TTLCache

from gateway.errors import DeadlineExceeded, StrataError
from gateway.pipeline.call import Call


@dataclass(frozen=True)
class Landing:
    entry: bytes | None = None  # the encoded entry the leader stored (or would have)
    error: StrataError | None = None  # the leader's error; both None: abandoned


class Flights:
    """A flight that landed with an answer is kept ``recent_s`` for the calls whose cache read
    was already on its way when the leader stored and landed (a Redis round trip can be slower
    than the leader's last step under load): they find the landing instead of leading again.
    Calls that looked later are not served from it (they read the cache itself, flushes
    included)."""

    def __init__(self, recent_s: float = 2.0) -> None:
        self._live: dict[str, asyncio.Future[Landing]] = {}
        self._recent: TTLCache[str, tuple[float, asyncio.Future[Landing]]] = TTLCache(
            4096, recent_s
        )
        self.waits = 0  # calls that waited on another's flight

    def current(self, key: str, looked_at: float) -> asyncio.Future[Landing] | None:
        """The flight in progress, or one that landed after ``looked_at`` (monotonic: when this
        call's cache read began)."""
        live = self._live.get(key)
        if live is not None:
            return live
        recent = self._recent.get(key)
        if recent is not None and recent[0] >= looked_at:
            return recent[1]
        return None

    def forget(self) -> None:
        """After a flush: landed answers must not outlive the entries they came from."""
        self._recent.clear()

    def lead(self, key: str) -> asyncio.Future[Landing]:
        future: asyncio.Future[Landing] = asyncio.get_running_loop().create_future()
        self._live[key] = future
        return future

    def land(
        self, key: str, future: asyncio.Future[Landing], landing: Landing, recent: bool = True
    ) -> None:
        if self._live.get(key) is future:
            del self._live[key]
        if not future.done():
            future.set_result(landing)
        if landing.entry is not None and recent:
            self._recent[key] = (time.monotonic(), future)

    async def wait(self, call: Call, future: asyncio.Future[Landing]) -> Landing:
        if future.done():
            return future.result()
        self.waits += 1
        try:
            # shield: one waiter timing out must not cancel the flight for the others.
            return await asyncio.wait_for(asyncio.shield(future), call.remaining_s())
        except TimeoutError:
            raise DeadlineExceeded(
                "the call's deadline passed while it waited for an identical call's answer"
            ) from None


def own_copy(error: StrataError) -> StrataError:
    """The leader's error for one waiter: same class and fields, its own response headers (the
    surface fills them with that waiter's request id)."""
    copy = error.__class__.__new__(error.__class__)
    copy.__dict__.update(error.__dict__)
    copy.args = error.args
    copy.response_headers = {}
    return copy


def abandons(error: BaseException) -> bool:
    """Errors that are the leader's own business, not the upstream's answer."""
    return isinstance(error, asyncio.CancelledError | DeadlineExceeded)
