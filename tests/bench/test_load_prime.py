"""bench._load primes every connection before timing: the first answer on a fresh connection
carries the server's accept, which is not what a saturated run measures."""

from __future__ import annotations

import asyncio

from bench._load import LOOPBACK, Call, run

_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class _Counting(asyncio.Protocol):
    """A loopback HTTP/1.1 server that answers every GET and counts them per connection."""

    def __init__(self, seen: list[int]) -> None:
        self._seen = seen
        self._index = len(seen)
        seen.append(0)
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while b"\r\n\r\n" in self._buffer:
            _, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            self._seen[self._index] += 1
            assert self._transport is not None
            self._transport.write(_ANSWER)


async def _serve_and_run(prime: bool) -> tuple[list[int], int]:
    seen: list[int] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Counting(seen), LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        samples = await run(Call.get("count", port, "/"), 50, 4, prime=prime)
    finally:
        server.close()
        await server.wait_closed()
    return seen, samples.ok


async def test_every_connection_carries_one_untimed_request_first() -> None:
    seen, timed = await _serve_and_run(prime=True)
    assert timed == 50  # the primes are not among the samples
    assert len(seen) == 4
    assert sum(seen) == 54  # 50 timed + one prime on each of the 4 connections
    assert all(n >= 1 for n in seen)


async def test_without_priming_only_the_timed_requests_are_sent() -> None:
    seen, timed = await _serve_and_run(prime=False)
    assert timed == 50
    assert sum(seen) == 50
