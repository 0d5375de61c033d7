"""Single-flight: concurrent identical cacheable calls of one process make one upstream call.

The first call of a key leads; the others wait on its ``Landing`` (each bounded by its own
deadline) and are served from the leader's entry. A leader that fails passes its error to every
waiter; one that is abandoned (its client went away, or its own deadline passed) lets the
waiters go on, the first of them leading a new flight. Across replicas there is no flight: each
process makes at most one call per key at a time, and the shared cache serves the rest.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.errors import DeadlineExceeded, StrataError
from gateway.pipeline.call import Call


@dataclass(frozen=True)
class Landing:
    entry: bytes | None = None  # the encoded entry the leader stored (or would have)
    error: StrataError | None = None  # the leader's error; both None: abandoned


class Flights:
    def __init__(self) -> None:
        self._live: dict[str, asyncio.Future[Landing]] = {}
        self.waits = 0  # calls that waited on another's flight

    def current(self, key: str) -> asyncio.Future[Landing] | None:
        return self._live.get(key)

    def lead(self, key: str) -> asyncio.Future[Landing]:
        future: asyncio.Future[Landing] = asyncio.get_running_loop().create_future()
        self._live[key] = future
        return future

    def land(self, key: str, future: asyncio.Future[Landing], landing: Landing) -> None:
        if self._live.get(key) is future:
            del self._live[key]
        if not future.done():
            future.set_result(landing)

    async def wait(self, call: Call, future: asyncio.Future[Landing]) -> Landing:
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
