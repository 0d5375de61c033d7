"""Running the app under uvicorn: the socket bound first, then the server with its guards and
its drain (``gateway/drain.py``)."""

from __future__ import annotations

import logging
import socket

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from gateway.conn_guard import ConnectionGuard
from gateway.drain import Drain
from gateway.drain_server import DrainingServer
from gateway.one_write import one_write
from gateway.settings import Settings

log = logging.getLogger("strata.serve")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; OSError (port busy, bad address) at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def server(app: FastAPI, settings: Settings, parent_pid: int | None = None) -> DrainingServer:
    guard = ConnectionGuard(settings.header_timeout_s, settings.max_waiting_connections)
    drain = Drain()
    app.state.drain = drain  # /readyz reads it
    config = uvicorn.Config(
        guard.app(drain.app(app)),
        log_config=None,
        access_log=False,
        loop="auto",
        # Outermost, so the guard too sees (and closes) the transport that holds heads.
        http=one_write(guard.protocol(AutoHTTPProtocol)),
        lifespan="on",
        timeout_keep_alive=5,
    )
    return DrainingServer(
        config,
        drain,
        drain_s=settings.drain_s,
        drain_delay_s=settings.drain_delay_s,
        parent_pid=parent_pid,
    )


def run(
    app: FastAPI, settings: Settings, sock: socket.socket, parent_pid: int | None = None
) -> None:
    host, port = sock.getsockname()[:2]
    log.info("listening on http://%s:%d", host, port)
    server(app, settings, parent_pid).run(sockets=[sock])
