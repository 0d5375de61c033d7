"""Graceful drain: what a worker does between SIGTERM and exit.

``Drain`` counts the HTTP requests in flight (a stream counts until its last byte is sent) and
holds the ``draining`` flag that ``/readyz`` reports (503 ``draining``) so a load balancer stops
sending. While draining, every response carries ``Connection: close``, so a keep-alive client
reconnects elsewhere instead of sending its next request to a worker about to go.

The order (``gateway.serving.DrainingServer``): flag on → keep accepting ``drain_delay_s`` →
stop accepting → in-flight requests and streams finish → lifespan shutdown (settles, ledger,
CloudWatch/EMF flushed) → exit. Past ``drain_s`` the worker exits anyway and logs how many
requests it cut; their ledger records are in the write-ahead segment, replayed at next start.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("strata.drain")

_CLOSE = (b"connection", b"close")


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self.inflight = 0
        self.served_while_draining = 0
        self.cutting = False

    def begin(self) -> None:
        self.draining = True

    def cut(self) -> None:
        """The bound is reached: the requests still running are being cancelled."""
        self.cutting = True

    def app(self, app: ASGIApp) -> ASGIApp:
        drain = self

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            drain.inflight += 1
            try:
                if drain.draining:
                    drain.served_while_draining += 1
                    await app(scope, receive, _closing(send))
                else:
                    await app(scope, receive, send)
            except asyncio.CancelledError:
                if not drain.cutting:
                    raise
                # Cut by the drain bound (counted and logged once there), not a failure of
                # this request's code: no traceback per request.
            finally:
                drain.inflight -= 1

        return counted


def _closing(send: Send) -> Send:
    """``send`` with ``Connection: close`` added to the response head."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
            message = {**message, "headers": [*headers, _CLOSE]}
        await send(message)

    return wrapped
