"""A loopback TCP front for a server, that loses the keep-alive race on purpose.

An HTTP/1.1 server may close an idle kept-alive connection at any moment; a client whose
request crosses the close on the wire gets a reset, and the server never sees the request.
On loopback the close arrives at once, so the crossing is rare; this proxy makes it certain: a
connection idle (no byte either way) for ``idle_s`` is reset on the next bytes the client sends,
and those bytes are never forwarded. ``idle_s=0`` resets every request, even on a new
connection. ``connections`` and ``resets`` count what happened.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

from tests.fakes.tcp_proxy import TcpProxy


class IdleResetProxy(TcpProxy):
    def __init__(self, upstream_port: int, idle_s: float) -> None:
        super().__init__("127.0.0.1", upstream_port)
        self.idle_s = idle_s
        self.connections = 0
        self.resets = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> IdleResetProxy:
        super().__enter__()
        return self

    def _connected(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        last = [time.monotonic()]  # the last byte either way, shared by both pipes
        for pipe, ends in (
            (self._requests, (client, upstream)),
            (self._replies, (upstream, client)),
        ):
            threading.Thread(target=pipe, args=(*ends, last), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, last: list[float]) -> None:
        try:
            while data := client.recv(65536):
                if time.monotonic() - last[0] >= self.idle_s:
                    self._reset(client, upstream)
                    return
                last[0] = time.monotonic()
                upstream.sendall(data)
        except OSError:
            pass
        _close(client, upstream)

    def _replies(self, upstream: socket.socket, client: socket.socket, last: list[float]) -> None:
        try:
            while data := upstream.recv(65536):
                last[0] = time.monotonic()  # before the client can see it and answer
                client.sendall(data)
                last[0] = time.monotonic()
        except OSError:
            pass
        _close(client, upstream)

    def _reset(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            self.resets += 1
        # Linger 0 and no shutdown first: the close sends RST, as a server's kernel does for a
        # request that reached a socket it had closed.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        _close(upstream)


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
