"""The ``local`` provider: in-process generation through ``adapters_local``.

Models load in a worker thread at start-up (the default one) or on first use; generation runs on
the engine's own thread and reaches the event loop through ``call_soon_threadsafe``, so the loop
is never blocked by torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

from adapters_local.compose.spec import BASE, CompositionError, parallel_parts
from adapters_local.serving.generation import (
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    InferenceEngine,
    PromptTooLong,
    RequestError,
    TextDelta,
)
from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.errors import (
    InvalidRequest,
    NotFound,
    StrataError,
    UpstreamError,
    UpstreamUnavailable,
)
from gateway.providers import local_translate as tr
from gateway.providers.local_limits import PromptBound, prompt_bound, too_long
from gateway.targets import Target

if TYPE_CHECKING:
    from gateway.config import LocalBase

log = logging.getLogger("strata.local")

Loader = Callable[[str, Mapping[str, str]], InferenceEngine]


def default_loader(path: str, adapters: Mapping[str, str]) -> InferenceEngine:
    from adapters_local.serving.engine import (
        load_engine,  # torch is imported only when a model loads
    )

    return load_engine(path, dict(adapters))


class LocalProvider:
    def __init__(
        self,
        bases: Mapping[str, LocalBase],
        loader: Loader = default_loader,
        unavailable: Mapping[str, str] | None = None,
        on_loaded: Callable[[], object] | None = None,
    ) -> None:
        self._bases = dict(bases)
        self._loader = loader
        # Called on the event loop after a model loads (the app re-freezes the heap there).
        self._on_loaded = on_loaded
        self._engines: dict[str, asyncio.Future[InferenceEngine]] = {}
        self._eager: set[str] = set()
        # target string → why it cannot be served (found by the start-up checks)
        self._unavailable = dict(unavailable or {})
        self._bounds: dict[str, PromptBound | None] = {}

    def preload(self, base: str) -> asyncio.Future[InferenceEngine] | None:
        """Start loading ``base`` now, in a thread; ``ready()`` waits on these."""
        if f"local:{base}" in self._unavailable:
            return None
        self._eager.add(base)
        return self._engine(base)

    def status(self) -> dict[str, str]:
        """Each base started so far → ``ready`` / ``loading`` / ``failed``, plus every target the
        start-up checks refused → ``unavailable``. Reasons stay in the log: /readyz is public."""
        out: dict[str, str] = {}
        for base, future in sorted(self._engines.items()):
            if not future.done():
                out[f"local:{base}"] = "loading"
            else:
                failed = future.exception() is not None
                out[f"local:{base}"] = "failed (see the gateway log)" if failed else "ready"
        for target in sorted(self._unavailable):
            out[target] = "unavailable (see the gateway log)"
        return out

    def ready(self) -> bool:
        return all(
            (f := self._engines.get(b)) is not None and f.done() and f.exception() is None
            for b in self._eager
        )

    def engines(self) -> dict[str, InferenceEngine]:
        return {
            name: f.result()
            for name, f in self._engines.items()
            if f.done() and f.exception() is None
        }

    def close(self) -> None:
        self._on_loaded = None  # a load that ends after shutdown must not freeze a dead app
        for engine in self.engines().values():
            engine.close()

    def _engine(self, base: str) -> asyncio.Future[InferenceEngine]:
        future = self._engines.get(base)
        if future is None or (
            future.done() and future.exception() is not None and base not in self._eager
        ):
            spec = self._bases.get(base)
            if spec is None:
                raise NotFound(
                    f"local base model {base!r} is not configured "
                    f"(known: {', '.join(sorted(self._bases))})"
                )
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(None, self._load, base, spec.path, spec.adapters)
            future.add_done_callback(self._loaded)
            self._engines[base] = future
        return future

    def _loaded(self, future: asyncio.Future[InferenceEngine]) -> None:
        if self._on_loaded is not None and not future.cancelled() and future.exception() is None:
            self._on_loaded()

    def _load(self, base: str, path: str, adapters: Mapping[str, str]) -> InferenceEngine:
        started = time.perf_counter()
        try:
            engine = self._loader(path, adapters)
        except Exception as exc:
            # Logged when it happens, not when the first request finds the failed future.
            log.error("local model %r failed to load: %s: %s", base, type(exc).__name__, exc)
            raise
        log.info(
            "local model %r loaded in %.1fs (adapters: %s)",
            base,
            time.perf_counter() - started,
            ", ".join(adapters) or "none",
        )
        return engine

    async def _ready_engine(self, target: Target) -> InferenceEngine:
        parts = _adapter_parts(target.adapter)
        names = [f"local:{target.model}", str(target)]
        names += [f"local:{target.model}@{p}" for p in parts]
        for name in names:
            if name in self._unavailable:
                # The reason names files of this host: it went to the log at start, not here.
                raise UpstreamUnavailable(f"{name} is unavailable; the gateway's log says why")
        future = self._engine(target.model)
        try:
            engine = await asyncio.shield(future)
        except Exception as exc:
            log.error("local model %r failed to load: %s", target.model, exc)
            raise UpstreamUnavailable(f"local model {target.model!r} failed to load") from exc
        for adapter in parts:
            if adapter not in engine.adapter_names and not (adapter == BASE and len(parts) > 1):
                raise NotFound(
                    f"adapter {adapter!r} is not loaded on local base "
                    f"{target.model!r} (loaded: {', '.join(engine.adapter_names)})"
                )
        return engine

    async def _events(
        self, target: Target, request: GenerationRequest
    ) -> AsyncIterator[GenerationEvent]:
        engine = await self._ready_engine(target)
        bound = await self._bound(target.model, engine)
        if bound is not None:
            bound.check(request)  # a hopeless prompt never reaches the engine's thread
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[GenerationEvent] = asyncio.Queue()

        def emit(event: GenerationEvent) -> None:
            # RuntimeError: the loop closed while generation ran (shutdown).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, event)

        cancel = engine.submit(request, emit)
        finished = False
        try:
            while True:
                event = await queue.get()
                if isinstance(event, Failed):
                    finished = True
                    raise _translate(event.error)
                yield event
                if isinstance(event, Finished):
                    finished = True
                    return
        finally:
            if not finished:
                cancel()  # the client went away: free the batch slot

    async def _bound(self, base: str, engine: InferenceEngine) -> PromptBound | None:
        if base not in self._bounds:
            # Once per base, off the loop: it walks the vocabulary.
            self._bounds[base] = await asyncio.to_thread(prompt_bound, engine)
        return self._bounds[base]

    async def converse(self, target: Target, request: ConverseRequest) -> ConverseResponse:
        started = time.perf_counter()
        parts: list[str] = []
        done: Finished | None = None
        async for event in self._events(target, tr.to_generation(request, target.adapter)):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, Finished):
                done = event
        assert done is not None  # _events ends only on Finished or by raising
        return ConverseResponse.model_validate(
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "".join(parts)}]}},
                "stopReason": done.stop_reason,
                "usage": tr.usage(done),
                "metrics": {"latencyMs": int((time.perf_counter() - started) * 1000)},
            }
        )

    async def converse_stream(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        started = time.perf_counter()
        generation = tr.to_generation(request, target.adapter)
        events = self._events(target, generation)
        first = True
        async for event in events:
            if first:
                first = False
                for e in tr.start_events():
                    yield e
            if isinstance(event, TextDelta):
                yield tr.delta_event(event.text)
            elif isinstance(event, Finished):
                for e in tr.end_events(event, int((time.perf_counter() - started) * 1000)):
                    yield e


def _adapter_parts(adapter: str | None) -> tuple[str, ...]:
    """``a+b`` (an ad-hoc parallel composition) names two adapters; ``a`` one."""
    if not adapter:
        return ()
    try:
        return parallel_parts(adapter) or (adapter,)
    except CompositionError as exc:
        raise InvalidRequest(str(exc), param="model") from None


def _translate(error: BaseException) -> StrataError:
    if isinstance(error, StrataError):
        return error
    if isinstance(error, PromptTooLong):
        return too_long(error.prompt_tokens, error.context_length, exact=not error.at_least)
    if isinstance(error, RequestError):
        # The engine's client errors name their field and never quote the prompt.
        return InvalidRequest(str(error), param=error.param)
    # The type only: an engine's message can quote the prompt it failed on.
    log.error("local generation failed: %s", type(error).__name__)
    return UpstreamError("the local model failed to generate")
