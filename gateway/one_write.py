"""A response's head and its body leave in one write, not two.

uvicorn writes the status line and headers as soon as the app sends ``http.response.start``,
then the body as a second write: two system calls and two loopback segments, each waking the
client, for every answer. ``one_write`` wraps uvicorn's HTTP protocol so that a response head
is held until the next write, which sends both together. A head that nothing follows in the
same loop iteration (a stream whose first chunk is not ready, a HEAD request) is flushed on its
own at the end of that iteration, and always before the connection closes, so nothing is
reordered or delayed past the current turn of the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

# Joined into one bytes object below this size; larger bodies go as two buffers of one call.
_JOIN_LIMIT = 65536


class _HeadHolding:
    """The connection's transport, for the protocol and its request cycles alike."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) < _JOIN_LIMIT:
                self._transport.write(held + bytes(data))
            else:
                self._transport.writelines((held, data))
            return
        if _is_head(data):
            self._held = bytes(data)
            asyncio.get_running_loop().call_soon(self.flush)
            return
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        self.flush()
        self._transport.writelines(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def close(self) -> None:
        self.flush()
        self._transport.close()


def _is_head(data: bytes | bytearray | memoryview) -> bool:
    # A final response's status line (an interim 1xx, such as 100 Continue, goes at once).
    return data[:9] == b"HTTP/1.1 " and data[9:10] != b"1"


def one_write(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's HTTP protocol class) writing each response head with its body."""

    class OneWrite(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(_HeadHolding(cast(asyncio.Transport, transport)))

    OneWrite.__name__ = f"OneWrite{base.__name__}"
    return OneWrite
