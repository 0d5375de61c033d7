"""The local inference engine: one worker thread that batches whatever requests are waiting.

Static batching: requests that arrive while a batch runs wait and then run together as the next
batch (requests arriving within ``gather_s`` of one another start together).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from adapters_local.serving.batch_runner import Job, emit_quietly, run_batch
from adapters_local.serving.generation import Emit, EngineStats, Failed, GenerationRequest
from adapters_local.serving.served_model import ServedModel

_STOP = object()


class EngineClosedError(RuntimeError):
    pass


class LocalEngine:
    def __init__(
        self,
        model: ServedModel,
        *,
        max_batch_size: int = 16,
        gather_s: float = 0.01,
        seed: int = 0,
    ) -> None:
        self._model = model
        self._max_batch = max_batch_size
        self._gather_s = gather_s
        self._seeds = itertools.count(seed)
        self._queue: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()  # guards the model between batches and compositions
        self._submit_lock = threading.Lock()  # orders submits against close
        self._closed = False
        self._stats = EngineStats()
        self._thread = threading.Thread(target=self._run, name="strata-local-engine", daemon=True)
        self._thread.start()

    @property
    def base_name(self) -> str:
        return self._model.base_name

    @property
    def adapter_names(self) -> tuple[str, ...]:
        return tuple(self._model.routes)

    @property
    def stats(self) -> EngineStats:
        return self._stats

    @property
    def tokenizer(self) -> object:
        return self._model.tokenizer

    def submit(self, request: GenerationRequest, emit: Emit) -> Callable[[], None]:
        job = Job(request, emit, next(self._seeds))
        with self._submit_lock:
            if not self._closed:
                self._queue.put(job)
                return job.cancelled.set
        emit(Failed(EngineClosedError("the local engine is closed")))
        return job.cancelled.set

    def add_weighted_lora(self, name: str, weights: Mapping[str, float]) -> None:
        with self._lock:
            self._model.add_weighted_lora(name, weights)

    def add_stack(self, name: str, lora: str, bottleneck: str) -> None:
        with self._lock:
            self._model.add_stack(name, lora, bottleneck)

    def load_adapter(self, name: str, folder: str | Path) -> None:
        with self._lock:
            self._model.load_adapter(name, Path(folder))

    def close(self) -> None:
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Job):
                emit_quietly(item.emit, Failed(EngineClosedError("the local engine is closed")))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs, stop = self._gather(first)
            try:
                with self._lock:
                    run_batch(self._model, jobs, self._count_batch)
            except Exception as exc:  # the worker must outlive any one batch
                for job in jobs:
                    emit_quietly(job.emit, Failed(exc))
            if stop:
                return

    def _count_batch(self, size: int) -> None:
        self._stats.batches += 1
        self._stats.requests += size
        self._stats.batch_sizes.append(size)

    def _gather(self, first: object) -> tuple[list[Job], bool]:
        jobs = [first] if isinstance(first, Job) else []
        while len(jobs) < self._max_batch:
            try:
                item = self._queue.get(timeout=self._gather_s)
            except queue.Empty:
                break
            if item is _STOP:
                return jobs, True
            if isinstance(item, Job):
                jobs.append(item)
        return jobs, False
