"""A 32-way load of openai SDK streams, raw SSE streams and plain SDK calls, run in a thread
until told to stop (and held, and released, on the way if need be); every request's outcome is
kept, to check that a drain cut none."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import httpx
import openai

from tests.accounting.gateways import ADMIN_KEY

KINDS = ("sdk_stream", "raw_stream", "sdk_plain")


@dataclass
class Outcome:
    kind: str
    started: float
    ended: float
    request_id: str | None  # None: the request got no answer at all
    complete: bool  # the whole answer: a stream's final chunk and [DONE], a plain call's text
    error: str = ""


class DrainLoad:
    def __init__(self, url: str, expected_text: str, concurrency: int = 32) -> None:
        self.url, self.expected, self.concurrency = url, expected_text, concurrency
        self.outcomes: list[Outcome] = []
        self.started = 0  # requests begun; final once stop() or hold() has returned
        self._stopped = False
        self._held = False
        self._running: dict[int, tuple[str, float]] = {}  # begun, not ended: kind, start
        self._lock = threading.Lock()  # a stop check and its start counted as one step
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No request starts after this returns (those running go on)."""
        with self._lock:
            self._stopped = True

    def hold(self) -> None:
        """No request starts after this returns until ``release()`` (those running go on)."""
        with self._lock:
            self._held = True

    def release(self) -> None:
        with self._lock:
            self._held = False

    def running(self) -> list[tuple[str, float]]:
        """The requests begun and not yet ended: their kind and ``Outcome.started``."""
        with self._lock:
            return list(self._running.values())

    async def _begin(self, kind: str) -> tuple[int, float] | None:
        """A new request's number and start, once the load is not held; None once stopped."""
        while True:
            with self._lock:
                if self._stopped:
                    return None
                if not self._held:
                    self.started += 1
                    began = time.monotonic()
                    self._running[self.started] = (kind, began)
                    return self.started, began
            await asyncio.sleep(0.005)

    def join(self, timeout_s: float = 120) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the load did not finish"

    @property
    def answered(self) -> int:
        return sum(1 for o in self.outcomes if o.complete)

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        async with (
            httpx.AsyncClient(timeout=60, limits=limits) as http,
            openai.AsyncOpenAI(
                base_url=self.url + "/v1", api_key=ADMIN_KEY, max_retries=0, timeout=60
            ) as sdk,
        ):
            await asyncio.gather(
                *(self._worker(KINDS[i % len(KINDS)], sdk, http) for i in range(self.concurrency))
            )

    async def _worker(self, kind: str, sdk: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
        call = {"sdk_stream": self._sdk_stream, "raw_stream": self._raw_stream}.get(
            kind, self._sdk_plain
        )
        while (begun := await self._begin(kind)) is not None:
            number, started = begun
            try:
                request_id, complete = await call(sdk, http)
                error = ""
            except Exception as exc:  # a cut stream or a refused call: recorded, asserted on
                request_id, complete, error = None, False, f"{type(exc).__name__}: {exc}"
            outcome = Outcome(kind, started, time.monotonic(), request_id, complete, error)
            with self._lock:
                del self._running[number]
                self.outcomes.append(outcome)

    def _messages(self) -> list[openai.types.chat.ChatCompletionMessageParam]:
        return [{"role": "user", "content": "tell me a story"}]

    async def _sdk_plain(self, sdk: openai.AsyncOpenAI, http: httpx.AsyncClient) -> tuple:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="chat", messages=self._messages(), max_tokens=50
        )
        completion = raw.parse()
        complete = completion.choices[0].message.content == self.expected
        return raw.headers.get("x-strata-request-id"), complete

    async def _sdk_stream(self, sdk: openai.AsyncOpenAI, http: httpx.AsyncClient) -> tuple:
        async with sdk.chat.completions.with_streaming_response.create(
            model="chat", messages=self._messages(), max_tokens=50, stream=True
        ) as response:
            request_id = response.headers.get("x-strata-request-id")
            text, finish = [], None
            async for chunk in await response.parse():
                for choice in chunk.choices:
                    text.append(choice.delta.content or "")
                    finish = choice.finish_reason or finish
        return request_id, "".join(text) == self.expected and finish == "stop"

    async def _raw_stream(self, sdk: openai.AsyncOpenAI, http: httpx.AsyncClient) -> tuple:
        body = {
            "model": "chat",
            "messages": self._messages(),
            "max_tokens": 50,
            "stream": True,
        }
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with http.stream(
            "POST", self.url + "/v1/chat/completions", json=body, headers=headers
        ) as response:
            request_id = response.headers.get("x-strata-request-id")
            events = [
                line.removeprefix("data: ")
                async for line in response.aiter_lines()
                if line.startswith("data: ")
            ]
        return request_id, response.status_code == 200 and events[-1:] == ["[DONE]"]
