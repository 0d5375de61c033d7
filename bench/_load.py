"""A cheap HTTP/1.1 load generator: pre-built request bytes over keep-alive asyncio connections.

The client shares the machine's cores with the gateway and the fake, so each request costs it one
``transport.write`` and an httptools (C) parse of the answer: no header building, no JSON. It
talks to 127.0.0.1 only and stops after a fixed number of requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import httptools

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


def run_client(coro: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark's client: on uvloop when installed, which is cheaper and leaves more of
    the shared cores to the servers."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    result: T = uvloop.run(coro)
    return result


@dataclass(frozen=True)
class Call:
    """One request, built once and replayed byte for byte."""

    name: str
    port: int
    raw: bytes

    @classmethod
    def post(cls, name: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> Call:
        lines = [f"POST {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}", "", ""]
        return cls(name, port, "\r\n".join(lines).encode() + body)

    @classmethod
    def get(cls, name: str, port: int, path: str) -> Call:
        return cls(name, port, f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n\r\n".encode())


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


@dataclass
class Samples:
    """Per-request timings in seconds, in completion order, and the run's wall time."""

    first_byte: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    # Each request's start, in seconds from the run's start, and its connection's index: where
    # in a run the slow ones fall (bench.saturation --timeline).
    start: list[float] = field(default_factory=list)
    conn: list[int] = field(default_factory=list)
    wall_s: float = 0.0
    errors: int = 0
    first_error: str = ""
    answer: Answer | None = None  # one full answer, to check that the gateway answered right
    # Untimed requests answered before the clock started (``prime``): the server did their work
    # too, so per-request CPU and upstream-call counts divide by ``served``, not ``ok``.
    primed: int = 0

    @property
    def served(self) -> int:
        return self.ok + self.primed

    @property
    def ok(self) -> int:
        return len(self.total)

    @property
    def throughput(self) -> float:
        return self.ok / self.wall_s if self.wall_s > 0 else 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[None] | None = None
        self._lost: BaseException | None = None
        self._keep_body = False
        self._body: list[bytes] = []
        self.started = 0.0
        self.first_byte = 0.0
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("connection closed by the server")
        if self._done is not None and not self._done.done():
            self._done.set_exception(self._lost)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._done is not None and not self._done.done():
                self._done.set_exception(exc)

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        if self._keep_body:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def send(self, raw: bytes, *, keep_body: bool) -> Answer:
        if self._lost is not None or self._transport is None:
            raise ConnectionError("connection is closed")
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._keep_body = keep_body
        self._body = []
        self.first_byte = 0.0
        self.status = 0
        self.started = time.perf_counter()
        self._transport.write(raw)
        await self._done
        return Answer(self.status, b"".join(self._body))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _connect(port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(_Connection, LOOPBACK, port)
    return protocol


async def fetch(call: Call) -> Answer:
    """One request on a fresh connection, with its full body."""
    conn = await _connect(call.port)
    try:
        return await conn.send(call.raw, keep_body=True)
    finally:
        conn.close()


async def run(
    call: Call,
    requests: int,
    concurrency: int,
    *,
    timeout_s: float = 30.0,
    raw_for: Callable[[int], bytes] | None = None,
    rate_per_s: float | None = None,
    prime: bool = True,
) -> Samples:
    """Send ``call`` ``requests`` times over ``concurrency`` connections, each one request at a
    time; a non-200 answer, a broken connection or ``timeout_s`` without an answer counts as
    an error. Returns once every request has finished.

    ``raw_for(i)`` builds the i-th request's bytes instead of replaying ``call.raw`` (distinct
    bodies: cache misses). ``rate_per_s`` paces the starts (a low, steady rate: the cold path);
    it needs ``concurrency`` 1. ``prime`` first sends one untimed request per connection
    (``_prime``)."""
    if rate_per_s is not None and concurrency != 1:
        raise ValueError("rate_per_s needs concurrency 1")
    samples = Samples()
    remaining = requests
    sent = 0
    try:
        conns = [await _connect(call.port) for _ in range(concurrency)]
    except OSError as exc:
        raise RuntimeError(
            f"{call.name}: cannot connect to {LOOPBACK}:{call.port}: {exc}"
        ) from None
    if prime:
        conns = await _prime(conns, call.raw, timeout_s, samples)

    async def worker(conn: _Connection, number: int) -> None:
        nonlocal remaining, sent
        while remaining > 0:
            remaining -= 1
            index, sent = sent, sent + 1
            if rate_per_s is not None:
                await asyncio.sleep(max(0.0, started + index / rate_per_s - time.perf_counter()))
            raw = call.raw if raw_for is None else raw_for(index)
            keep = samples.answer is None
            try:
                answer = await asyncio.wait_for(conn.send(raw, keep_body=keep), timeout_s)
            except (OSError, TimeoutError, httptools.HttpParserError) as exc:
                samples.errors += 1
                samples.first_error = samples.first_error or f"{type(exc).__name__}: {exc}"
                return  # this connection is unusable; the others carry on
            if answer.status != 200:
                samples.errors += 1
                samples.first_error = samples.first_error or f"HTTP {answer.status}"
                continue
            done = time.perf_counter()
            samples.first_byte.append((conn.first_byte or done) - conn.started)
            samples.total.append(done - conn.started)
            samples.start.append(conn.started - started)
            samples.conn.append(number)
            if keep:
                samples.answer = answer

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c, n) for n, c in enumerate(conns)))
    finally:
        samples.wall_s = time.perf_counter() - started
        for conn in conns:
            conn.close()
    return samples


async def _prime(
    conns: list[_Connection], raw: bytes, timeout_s: float, samples: Samples
) -> list[_Connection]:
    """One untimed request on every connection before the clock starts, so that the server has
    accepted them all. ``connect`` returns once the kernel has completed the handshake, not once
    the server has accepted; on uvloop (libuv >= 1.45 accepts one connection per loop
    iteration) a busy server takes queued connections one per iteration, each iteration as long
    as the work of those already in, so the last of 32 fresh connections waited up to hundreds
    of ms for its first answer: a tail made by opening connections, not by serving requests."""

    async def one(conn: _Connection) -> _Connection | None:
        try:
            await asyncio.wait_for(conn.send(raw, keep_body=False), timeout_s)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            samples.errors += 1
            samples.first_error = samples.first_error or f"{type(exc).__name__}: {exc}"
            return None
        samples.primed += 1
        return conn  # a non-200 answer leaves the connection usable; the run counts its own

    primed = await asyncio.gather(*(one(c) for c in conns))
    return [c for c in primed if c is not None]


async def wait_ready(port: int, path: str, deadline: float, poll_s: float = 0.005) -> bool:
    """Poll ``GET path`` until it answers 200 or ``time.monotonic()`` passes ``deadline``."""
    call = Call.get("ready", port, path)
    while time.monotonic() < deadline:
        try:
            if (await asyncio.wait_for(fetch(call), 2.0)).status == 200:
                return True
        except (OSError, TimeoutError, httptools.HttpParserError):
            pass
        await asyncio.sleep(poll_s)
    return False
