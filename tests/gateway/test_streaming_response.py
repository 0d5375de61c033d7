"""The streaming response at the ASGI level: what it sends and when, how it notices a client
that left, and that it always closes the stream; and the ``Step`` it is built on."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.types import Message

from gateway.routes.ready import Step
from gateway.routes.streaming import ClosingStream

SCOPE: dict[str, Any] = {"type": "http", "asgi": {"spec_version": "2.3"}}


class Client:
    """An ASGI server's side of one response: records what is sent; ``leave()`` makes
    ``receive`` answer ``http.disconnect``, as uvicorn does once the connection is lost."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self._gone = asyncio.Event()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def receive(self) -> Message:
        await self._gone.wait()
        return {"type": "http.disconnect"}

    def leave(self) -> None:
        self._gone.set()

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


class Upstream:
    """Frames that are ready at once, then (``gate``) ones that come after a wait."""

    def __init__(self, ready: int, later: int = 0) -> None:
        self.gate = asyncio.Event()
        self.ready, self.later = ready, later
        self.cancelled = False
        self.closed = 0

    async def frames(self) -> AsyncIterator[bytes]:
        try:
            for i in range(self.ready):
                yield b"r%d;" % i
            if self.later:
                await self.gate.wait()
            for i in range(self.later):
                yield b"l%d;" % i
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def close(self) -> None:
        self.closed += 1


def response(upstream: Upstream) -> ClosingStream:
    return ClosingStream(
        upstream.frames(),
        on_close=upstream.close,
        media_type="text/event-stream",
        headers={"x-strata-request-id": "r1"},
    )


async def test_the_first_frame_goes_alone_then_ready_frames_together_with_the_end() -> None:
    client, upstream = Client(), Upstream(ready=5)
    await response(upstream)(SCOPE, client.receive, client.send)
    start = client.sent[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert client.bodies() == [b"r0;", b"r1;r2;r3;r4;"]
    assert client.sent[-1]["more_body"] is False
    assert upstream.closed == 1


async def test_ready_frames_are_sent_before_waiting_for_more() -> None:
    client, upstream = Client(), Upstream(ready=3, later=2)
    task = asyncio.create_task(response(upstream)(SCOPE, client.receive, client.send))
    for _ in range(5):
        await asyncio.sleep(0)
    assert client.bodies() == [b"r0;", b"r1;r2;"]  # out while the upstream is silent
    upstream.gate.set()
    await task
    assert client.bodies()[2:] == [b"l0;l1;"]
    assert client.sent[-1]["more_body"] is False
    assert upstream.closed == 1 and not upstream.cancelled


async def test_a_client_that_leaves_while_the_upstream_is_silent_cancels_the_stream() -> None:
    client, upstream = Client(), Upstream(ready=1, later=1)
    task = asyncio.create_task(response(upstream)(SCOPE, client.receive, client.send))
    for _ in range(5):
        await asyncio.sleep(0)
    client.leave()
    await asyncio.wait_for(task, 5)  # returns normally: a client leaving is no server error
    assert upstream.cancelled
    assert upstream.closed == 1
    assert client.bodies() == [b"r0;"]
    assert task.cancelling() == 0  # the cancellation it asked for itself is taken back


async def test_a_cancellation_from_elsewhere_propagates_and_still_closes() -> None:
    client, upstream = Client(), Upstream(ready=1, later=1)
    task = asyncio.create_task(response(upstream)(SCOPE, client.receive, client.send))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()  # what the drain bound does to requests still running
    with pytest.raises(asyncio.CancelledError):
        await task
    assert upstream.cancelled
    assert upstream.closed == 1


async def test_the_watcher_ends_with_a_complete_response() -> None:
    client, upstream = Client(), Upstream(ready=1, later=1)
    before = asyncio.all_tasks()
    task = asyncio.create_task(response(upstream)(SCOPE, client.receive, client.send))
    for _ in range(5):
        await asyncio.sleep(0)
    upstream.gate.set()
    await task
    client.leave()  # uvicorn answers http.disconnect once the response is complete
    for _ in range(5):
        await asyncio.sleep(0)
    assert asyncio.all_tasks() <= before | {asyncio.current_task()}
    assert not upstream.cancelled


class SlowClient(Client):
    """A client whose reading lags: the second body ``send`` waits until ``resume`` is set,
    as uvicorn's does while its write buffer is above the high-water mark."""

    def __init__(self) -> None:
        super().__init__()
        self.resume = asyncio.Event()
        self.paused = asyncio.Event()

    async def send(self, message: Message) -> None:
        if len(self.bodies()) == 1 and message["type"] == "http.response.body":
            self.paused.set()
            await self.resume.wait()
        await super().send(message)


async def test_a_paused_write_while_the_upstream_step_waits_keeps_every_frame_in_order() -> None:
    client, upstream = SlowClient(), Upstream(ready=3, later=2)
    task = asyncio.create_task(response(upstream)(SCOPE, client.receive, client.send))
    await asyncio.wait_for(client.paused.wait(), 5)
    upstream.gate.set()  # the upstream's next frames arrive while the write is paused
    for _ in range(5):
        await asyncio.sleep(0)
    client.resume.set()
    await asyncio.wait_for(task, 5)
    assert b"".join(client.bodies()) == b"r0;r1;r2;l0;l1;"
    assert client.sent[-1]["more_body"] is False
    assert upstream.closed == 1 and not upstream.cancelled


async def test_a_client_that_leaves_during_a_paused_write_cancels_the_waiting_upstream() -> None:
    client, upstream = SlowClient(), Upstream(ready=3, later=2)
    task = asyncio.create_task(response(upstream)(SCOPE, client.receive, client.send))
    await asyncio.wait_for(client.paused.wait(), 5)
    client.leave()
    await asyncio.wait_for(task, 5)
    assert upstream.cancelled  # the step that waited on the upstream saw the cancellation
    assert upstream.closed == 1
    assert task.cancelling() == 0


# -- Step -----------------------------------------------------------------------------------------


async def _value(value: int, wait: asyncio.Future[None] | None = None) -> int:
    if wait is not None:
        await wait
    return value


async def test_a_step_that_needs_no_wait_is_done_at_once() -> None:
    step = Step(_value(3))
    assert step.done and step.value == 3
    assert await step == 3


async def test_a_suspended_step_resumes_in_the_awaiting_task() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("outer")
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[object] = []

    async def inner() -> int:
        await future
        seen.extend([asyncio.current_task(), var.get()])
        return 7

    step = Step(inner())
    assert not step.done
    with pytest.raises(RuntimeError):
        _ = step.value
    asyncio.get_running_loop().call_soon(future.set_result, None)
    assert await step == 7
    assert seen == [asyncio.current_task(), "outer"]


async def test_cancelling_the_task_reaches_the_suspended_step() -> None:
    reached: list[str] = []

    async def inner() -> int:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            reached.append("cancelled")
            raise
        return 0

    async def outer() -> int:
        return await Step(inner())

    task = asyncio.create_task(outer())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reached == ["cancelled"]


async def test_an_abandoned_step_sees_the_exception_and_finishes_its_cleanup() -> None:
    done: list[str] = []

    async def inner() -> int:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            done.append("cleaned")
        return 0

    step = Step(inner())
    await step.abandon(asyncio.CancelledError())
    assert done == ["cleaned"]


async def test_an_iterator_end_before_any_wait_raises_from_the_step() -> None:
    async def empty() -> AsyncIterator[int]:
        return
        yield  # an async generator with nothing in it

    with pytest.raises(StopAsyncIteration):
        Step(empty().__anext__())
