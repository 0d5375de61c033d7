"""gateway/one_write.py: a response head leaves with its body, in order, never held past the
current turn of the event loop; and served through uvicorn, an answer arrives in one write."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from gateway.one_write import _HeadHolding, one_write

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recording(asyncio.Transport):
    """A transport that keeps what it was asked to write, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.writes.append(b"".join(bytes(d) for d in list_of_data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def test_head_and_body_go_in_one_write() -> None:
    inner = Recording()
    transport = _HeadHolding(inner)
    transport.write(HEAD)
    assert inner.writes == []
    transport.write(b"ok")
    assert inner.writes == [HEAD + b"ok"]
    transport.write(b"more")  # a later chunk goes at once
    assert inner.writes == [HEAD + b"ok", b"more"]


async def test_a_large_body_follows_its_head_unjoined_but_in_order() -> None:
    inner = Recording()
    transport = _HeadHolding(inner)
    body = b"x" * 100_000
    transport.write(HEAD)
    transport.write(body)
    assert inner.writes == [HEAD + body]


async def test_a_head_alone_leaves_on_the_next_turn_of_the_loop() -> None:
    inner = Recording()
    transport = _HeadHolding(inner)
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert inner.writes == [HEAD]
    transport.write(b"ok")
    assert inner.writes == [HEAD, b"ok"]


async def test_close_sends_a_held_head_first() -> None:
    inner = Recording()
    transport = _HeadHolding(inner)
    transport.write(HEAD)
    transport.close()
    assert inner.writes == [HEAD]
    assert inner.closed


async def test_interim_responses_and_other_bytes_are_not_held() -> None:
    inner = Recording()
    transport = _HeadHolding(inner)
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    transport.write(b"0\r\n\r\n")
    assert inner.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", b"0\r\n\r\n"]


class Counted:
    """The socket's transport, counting the writes that reach it."""

    def __init__(self, transport: asyncio.BaseTransport, written: list[bytes]) -> None:
        self._transport = transport
        self._written = written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def write(self, data: bytes) -> None:
        self._written.append(bytes(data))
        self._transport.write(data)  # type: ignore[attr-defined]


async def test_served_by_uvicorn_an_answer_is_one_write() -> None:
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    written: list[bytes] = []

    class Counting(one_write(AutoHTTPProtocol)):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(Counted(transport, written))  # type: ignore[arg-type]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=Counting, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"hello"):
            answer += await asyncio.wait_for(reader.read(1024), 10)
        writer.close()
    finally:
        server.should_exit = True
        await serving
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert written == [answer]
