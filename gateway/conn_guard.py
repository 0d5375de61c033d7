"""Slow or idle clients cannot hold connections open (slowloris).

uvicorn times out idle keep-alive connections, but not a client that sends its headers a byte
at a time, nor a fresh connection that sends nothing. The guard adds two things around uvicorn's
own HTTP protocol (whichever it picked) and the ASGI app:

- a **header deadline**: a connection must finish a request's headers within
  ``header_timeout_s`` of connecting (or of its previous response ending), else it is closed;
- a **cap on waiting connections**: at most ``max_waiting`` connections may be in that state
  (connected, no request yet) at once; further ones are closed as they arrive, so a flood of
  idle sockets cannot exhaust file descriptors. Connections with a request running do not count.

The protocol and the app meet through the peer address uvicorn puts in ``scope["client"]``.
Body reads have their own deadline (``gateway.http.read_body``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("strata.http")

Peer = tuple[str, int]


class ConnectionGuard:
    def __init__(self, header_timeout_s: float, max_waiting: int) -> None:
        self.header_timeout_s = header_timeout_s
        self.max_waiting = max_waiting
        self._timers: dict[Peer, asyncio.TimerHandle] = {}
        self._transports: dict[Peer, asyncio.BaseTransport] = {}
        self.refused = 0
        self.timed_out = 0

    @property
    def waiting(self) -> int:
        return len(self._timers)

    def protocol(self, base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
        """``base`` (uvicorn's HTTP protocol class) with the guard on connect and disconnect."""
        guard = self

        class Guarded(base):  # type: ignore[valid-type,misc]
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                guard._connected(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                guard._lost(self.transport)
                super().connection_lost(exc)

        Guarded.__name__ = f"Guarded{base.__name__}"
        return Guarded

    def app(self, app: ASGIApp) -> ASGIApp:
        guard = self

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            peer = _peer(scope.get("client"))
            if scope["type"] != "http" or peer is None:
                await app(scope, receive, send)
                return
            guard._request_started(peer)
            try:
                await app(scope, receive, send)
            finally:
                guard._arm(peer)  # waiting for the next request on this connection

        return guarded

    def _connected(self, transport: asyncio.BaseTransport) -> None:
        peer = _peer(transport.get_extra_info("peername"))
        if peer is None:
            return
        if self.waiting >= self.max_waiting:
            self.refused += 1
            if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
                log.warning(
                    "refused %d connection(s): %d are already connected without a request",
                    self.refused,
                    self.waiting,
                )
            transport.close()
            return
        self._transports[peer] = transport
        self._arm(peer)

    def _arm(self, peer: Peer) -> None:
        transport = self._transports.get(peer)
        if transport is None or transport.is_closing():
            return
        self._cancel(peer)
        loop = asyncio.get_running_loop()
        self._timers[peer] = loop.call_later(self.header_timeout_s, self._expire, peer)

    def _expire(self, peer: Peer) -> None:
        self._timers.pop(peer, None)
        transport = self._transports.pop(peer, None)
        if transport is not None and not transport.is_closing():
            self.timed_out += 1
            transport.close()

    def _request_started(self, peer: Peer) -> None:
        self._cancel(peer)

    def _cancel(self, peer: Peer) -> None:
        timer = self._timers.pop(peer, None)
        if timer is not None:
            timer.cancel()

    def _lost(self, transport: asyncio.BaseTransport | None) -> None:
        peer = _peer(transport.get_extra_info("peername")) if transport is not None else None
        if peer is not None and self._transports.get(peer) is transport:
            self._cancel(peer)
            del self._transports[peer]


def _peer(value: Any) -> Peer | None:
    if isinstance(value, list | tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None
