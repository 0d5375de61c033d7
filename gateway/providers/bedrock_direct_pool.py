"""The direct transport's connection pool: aiohttp's, plus what mature HTTP clients add for
kept-alive connections the server has already closed.

A server, or the load balancer in front of it, may close an idle kept-alive connection at any
moment (RFC 9112 section 9.5). A request written onto it as it closes is never processed, yet
fails with a reset or an EOF before any response byte. urllib3 and httpcore check a pooled
connection before reusing it, and Go's net/http resends such a request; aiohttp resends only
idempotent methods, and every Bedrock call is a POST. So here:

- ``PoolConnector`` drops a pooled connection whose socket is already readable (the peer's FIN
  or reset has arrived, and the event loop has not run since to notice), and records whether the
  connection it hands out had served a request before;
- ``resendable(exc)`` says whether a failed POST was that case: a reused connection, closed by
  the peer before any response byte. The provider then sends the request once more, at once, on
  a new connection, as part of the same attempt: no breaker failure, no retry-budget charge. A
  new connection failing, or a failure after response bytes, stays an error.
"""

from __future__ import annotations

import contextvars
import errno
import select
import weakref
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

# Set by PoolConnector.connect in the caller's task: whether that request's connection is reused.
_REUSED: contextvars.ContextVar[bool] = contextvars.ContextVar("strata_pool_reused", default=False)
# What a peer's close looks like to a writer or reader that had not seen it yet.
_CLOSED_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
_CLOSED_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class PoolConnector(aiohttp.TCPConnector):
    """A TCPConnector that hands out no connection the peer is known to have closed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._served: weakref.WeakSet[ResponseHandler] = weakref.WeakSet()

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        while True:
            conn = await super().connect(req, traces, timeout)
            proto = conn.protocol
            if proto is None or proto not in self._served:
                if proto is not None:
                    self._served.add(proto)
                _REUSED.set(False)
                return conn
            if not _peer_has_spoken(proto):
                _REUSED.set(True)
                return conn
            # Closed (or talking out of turn) while idle: drop it and take the next one.
            conn.close()


def _peer_has_spoken(proto: ResponseHandler) -> bool:
    """Whether an idle connection's socket is readable: an idle HTTP/1.1 peer sends nothing, so
    anything there (FIN, reset, stray bytes) means the connection must not carry a request."""
    transport = proto.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    # poll, not select: the gateway may hold descriptors above select's FD_SETSIZE.
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def reused() -> bool:
    """Whether the current task's last pooled request went out on a reused connection."""
    return _REUSED.get()


def unanswered(exc: BaseException) -> bool:
    """Whether ``exc``, raised before a response's head was read, shows the peer closed the
    connection without sending any of a response."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        # aiohttp puts the partly parsed response in ``message`` when any of it had arrived.
        return isinstance(exc.message, str)
    if isinstance(exc, aiohttp.ClientConnectorError) or not isinstance(exc, aiohttp.ClientOSError):
        return False  # a connector error could not connect at all: no kept-alive connection
    # A failed write ("Cannot write to closing transport") comes wrapped, its errno unset, the
    # socket's own error kept as the cause.
    cause = exc if exc.errno is not None else exc.__cause__
    return isinstance(cause, _CLOSED_ERRORS) or (
        isinstance(cause, OSError) and cause.errno in _CLOSED_ERRNOS
    )


def resendable(exc: BaseException) -> bool:
    """A request that failed only because its reused connection had been closed by the peer."""
    return reused() and unanswered(exc)


def fresh_connector(**kwargs: Any) -> aiohttp.TCPConnector:
    """One-shot connections, for the single resend: never a pooled one, which could be just as
    stale as the one that failed."""
    return aiohttp.TCPConnector(force_close=True, **kwargs)
