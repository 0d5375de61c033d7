"""The streaming response of both surfaces (Converse event-stream and OpenAI SSE).

Starlette's ``StreamingResponse`` (uvicorn announces ASGI 2.3) runs the body in a task of an
anyio task group per response, next to a task that waits for ``http.disconnect``, and sends
each chunk in its own ``send``: one socket write per event. Here the response's own task sends:

- the first chunk at once (time to first byte), then every chunk that is already there (an
  upstream read holds several events) in one ``send``, so a fast upstream's answer costs two or
  three writes instead of one per event; the last batch carries the end of the body;
- a client that leaves is noticed by one watcher task, started the first time the body has to
  wait for the upstream (an answer that is already complete never waits and needs none). The
  watcher cancels the response's task, which closes the upstream or stops local generation;
  uvicorn drops writes to a closed connection silently, so without it a silent upstream would
  keep a gone client's call open;
- ``on_close`` runs at the end in every case (shielded when the end is abnormal), so the
  upstream stream is closed and the call settled at once, not when the collector finds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.routes.ready import Step

# One send's worth of frames that were ready together; more waits for the next send. Far above
# what one upstream read gives, and a quarter of uvicorn's write buffer high-water mark.
BATCH_BYTES = 16 * 1024


class ClosingStream(Response):
    """Streams ``content`` and calls ``on_close`` when it ends in any way."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]],
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self._content = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = _Watch(receive)
        complete = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await self._stream(send, watch)
            complete = True
        except asyncio.CancelledError:
            if not watch.fired:
                raise  # not the client leaving (a drain cut, the server stopping)
            watch.uncancel()
        except OSError:
            pass  # an ASGI 2.4 server's send to a closed connection: the client left
        finally:
            watch.stop(complete)
            if complete:
                await self._on_close()  # the stream ended: nothing left to close but the call
            else:
                with anyio.CancelScope(shield=True):
                    await self._on_close()

    async def _stream(self, send: Send, watch: _Watch) -> None:
        content = self._content
        batch: list[bytes] = []
        size = 0
        first = True
        while True:
            try:
                step: Step[bytes] = Step(content.__anext__())
                if not step.done:
                    watch.start()  # before the flush: a paused write can wait on the client
                    if batch:
                        await _flush(send, batch, step)
                        batch, size = [], 0
                    chunk = await step
                else:
                    chunk = step.value
            except StopAsyncIteration:
                break
            batch.append(chunk)
            size += len(chunk)
            if first or size >= BATCH_BYTES:
                first = False
                await send(_body(batch, more=True))
                batch, size = [], 0
        await send(_body(batch, more=False))


async def _flush(send: Send, batch: list[bytes], pending: Step[bytes]) -> None:
    """Send what is ready while the next chunk's step waits on the upstream. A send that fails
    (the client left while the write was paused) reaches the step too, as it would have had
    it come while waiting there, so the upstream side unwinds before the response closes it."""
    try:
        await send(_body(batch, more=True))
    except BaseException as exc:
        await pending.abandon(exc if isinstance(exc, asyncio.CancelledError) else _gone())
        raise


def _body(batch: list[bytes], *, more: bool) -> Message:
    return {"type": "http.response.body", "body": b"".join(batch), "more_body": more}


def _gone() -> asyncio.CancelledError:
    return asyncio.CancelledError("the client went away")


class _Watch:
    """Waits for ``http.disconnect`` in a task of its own and cancels the response's task on
    it, unless the response has ended by then (uvicorn reports a completed response as a
    disconnect too)."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._owner = asyncio.current_task()
        self._task: asyncio.Task[None] | None = None
        self._ended = False
        self.fired = False

    def start(self) -> None:
        if self._task is None and self._owner is not None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        if not self._ended and self._owner is not None:
            self.fired = True
            self._owner.cancel()

    def uncancel(self) -> None:
        """The response handled the cancellation this watcher asked for."""
        if self._owner is not None:
            self._owner.uncancel()

    def stop(self, complete: bool) -> None:
        self._ended = True
        # A complete response wakes the watcher itself; otherwise it would wait for the
        # connection to close.
        if self._task is not None and not complete and not self._task.done():
            self._task.cancel()
