"""The local inference engine: a tokenizer pool, then one worker thread that decodes in batches.

Continuous batching: between two decode steps the worker admits whatever requests are waiting
(up to ``max_batch_size`` rows in all), so a request never waits for a batch to finish. When the
worker is idle, requests arriving within ``gather_s`` of the first are prefilled together.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from adapters_local.serving.batch_runner import RunningBatch
from adapters_local.serving.generation import Emit, EngineStats, Failed, GenerationRequest
from adapters_local.serving.prompts import PromptEncoder
from adapters_local.serving.rows import Job, end_job
from adapters_local.serving.served_model import ServedModel
from adapters_local.serving.threads import choose_threads

_STOP = object()
log = logging.getLogger("strata.local")


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
        threads: int | None = None,
    ) -> None:
        self._model = model
        self._max_batch = max_batch_size
        self._gather_s = gather_s
        self._seeds = itertools.count(seed)
        self._queue: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()  # guards the model between steps and compositions
        self._submit_lock = threading.Lock()  # orders submits against close
        self._closed = False
        self._stats = EngineStats()
        self._encoder = PromptEncoder(model.tokenizer, model.max_positions(), self._queue.put)
        self._threads = threads
        self._thread = threading.Thread(target=self._run, name="strata-local-engine", daemon=True)
        self._thread.start()

    @property
    def base_name(self) -> str:
        return self._model.base_name

    @property
    def adapter_names(self) -> tuple[str, ...]:
        return self._model.names

    @property
    def stats(self) -> EngineStats:
        return self._stats

    @property
    def tokenizer(self) -> object:
        return self._model.tokenizer

    @property
    def context_length(self) -> int:
        return self._model.max_positions()

    def submit(self, request: GenerationRequest, emit: Emit) -> Callable[[], None]:
        job = Job(request, emit, next(self._seeds))
        with self._submit_lock:
            if not self._closed:
                self._encoder.submit(job)
                return job.cancelled.set
        emit(Failed(EngineClosedError("the local engine is closed")))
        return job.cancelled.set

    def add_weighted_lora(self, name: str, weights: Mapping[str, float]) -> None:
        with self._lock:
            self._model.add_weighted_lora(name, weights)

    def add_stack(self, name: str, lora: str, bottleneck: str) -> None:
        with self._lock:
            self._model.add_stack(name, lora, bottleneck)

    def add_composition(self, name: str, value: str) -> None:
        """``value``: a composition string (``parallel:…``, ``route:…``, ``weighted:…``, …)."""
        from adapters_local.compose.spec import CompositionError, parse_composition
        from adapters_local.serving.engine import apply_composition

        composition = parse_composition(value)
        if composition is None:
            raise CompositionError(f"{value!r} is not a composition")
        with self._lock:
            apply_composition(self._model, name, composition)

    def load_adapter(self, name: str, folder: str | Path) -> None:
        with self._lock:
            self._model.load_adapter(name, Path(folder))

    def close(self) -> None:
        """Rows already decoding finish; requests not yet admitted fail with EngineClosedError."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
        self._encoder.close()  # every submitted job is now queued (or has failed)
        self._queue.put(_STOP)
        self._thread.join()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Job):
                end_job(item, Failed(EngineClosedError("the local engine is closed")))

    def _run(self) -> None:
        import torch

        if self._model.device == "cpu":
            try:
                self._stats.threads = choose_threads(self._model, self._threads)
            except Exception as exc:  # serving with torch's default beats not serving
                log.warning("could not choose CPU threads (%s); using torch's default", exc)
        batch = RunningBatch(self._model)
        stopping = False
        with torch.inference_mode():
            while not (stopping and not batch):
                jobs, stopping = self._waiting(len(batch), stopping)
                try:
                    with self._lock:
                        if jobs:
                            self._admit(batch, jobs)
                        if batch:
                            batch.step()
                except Exception as exc:  # the worker must outlive any one step
                    batch.fail_all(exc)
                    for job in jobs:
                        end_job(job, Failed(exc))

    def _admit(self, batch: RunningBatch, jobs: list[Job]) -> None:
        joining = len(batch) > 0
        added = batch.admit(jobs)
        if added:
            self._stats.batches += 1
            self._stats.requests += added
            self._stats.joins += int(joining)
            self._stats.batch_sizes.append(len(batch))

    def _waiting(self, running: int, stopping: bool) -> tuple[list[Job], bool]:
        """Jobs to admit before the next step; blocks only while there is nothing to decode."""
        jobs: list[Job] = []
        if stopping:
            return jobs, True
        idle = running == 0
        if idle:
            first = self._queue.get()
            if first is _STOP:
                return jobs, True
            assert isinstance(first, Job)
            jobs.append(first)
        while running + len(jobs) < self._max_batch:
            try:
                item = self._queue.get(timeout=self._gather_s) if idle else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return jobs, True
            if isinstance(item, Job):
                jobs.append(item)
        return jobs, False
