"""A handler-driven local engine: speaks the engine contract from its own thread, scripted per
request, so the local provider's bridging can be tested without a model."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from adapters_local.serving.generation import (
    EngineStats,
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
)

Script = Callable[[GenerationRequest], list[GenerationEvent | float]]


class ScriptedEngine:
    """Each request's script is a list of events and pauses (floats, seconds)."""

    def __init__(self, script: Script, adapters: tuple[str, ...] = ()) -> None:
        self._script = script
        self._adapters = adapters
        self._stats = EngineStats()
        self._jobs: queue.Queue[
            tuple[GenerationRequest, Callable[[GenerationEvent], None], threading.Event] | None
        ] = queue.Queue()
        self.cancelled: list[GenerationRequest] = []
        self.received: list[GenerationRequest] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def base_name(self) -> str:
        return "scripted"

    @property
    def adapter_names(self) -> tuple[str, ...]:
        return self._adapters

    @property
    def stats(self) -> EngineStats:
        return self._stats

    def submit(
        self, request: GenerationRequest, emit: Callable[[GenerationEvent], None]
    ) -> Callable[[], None]:
        cancel = threading.Event()
        self.received.append(request)
        self._jobs.put((request, emit, cancel))

        def do_cancel() -> None:
            cancel.set()
            self.cancelled.append(request)

        return do_cancel

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            request, emit, cancel = job
            for step in self._script(request):
                if cancel.is_set():
                    break
                if isinstance(step, float):
                    time.sleep(step)
                else:
                    emit(step)

    def close(self) -> None:
        self._jobs.put(None)


def text_script(*parts: str, pause: float = 0.0) -> Script:
    def script(request: GenerationRequest) -> list[GenerationEvent | float]:
        steps: list[GenerationEvent | float] = []
        for p in parts:
            steps += [pause, TextDelta(p)]
        steps.append(Finished("end_turn", 7, len(parts)))
        return steps

    return script


def failing_script(request: GenerationRequest) -> list[GenerationEvent | float]:
    return [TextDelta("partial"), Failed(RuntimeError("CUDA out of memory at 0xdeadbeef"))]
