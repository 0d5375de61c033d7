"""One request as a row of the running batch: its stream state, stops and budget.

Everything that can go wrong for one request (its sampling settings, its callback, its decoding)
ends that row with ``Failed`` and leaves the other rows of the batch untouched.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from adapters_local.serving.generation import (
    Emit,
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    PromptTooLong,
    RequestError,
    StopReason,
    TextDelta,
)
from adapters_local.serving.sampling import check_sampling, choose, is_greedy
from adapters_local.serving.served_model import Route, ServedModel
from adapters_local.serving.streaming_text import IncrementalDecoder, StopMatcher


@dataclass
class Job:
    """A submitted request, its default seed and its cancel flag (set from any thread)."""

    request: GenerationRequest
    emit: Emit
    seed: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    prompt: list[int] = field(default_factory=list)  # filled in off the engine thread
    ended: bool = False  # Finished or Failed was emitted: nothing may follow


@dataclass
class Row:
    job: Job
    lanes: tuple[Route, ...]  # one per batch lane: several for a parallel composition
    weights: tuple[float, ...]  # how each lane's logits count in the row's next token
    decoder: IncrementalDecoder
    stops: StopMatcher
    generator: Any
    budget: int
    produced: int = 0
    done: bool = False

    @property
    def prompt(self) -> list[int]:
        return self.job.prompt


def emit_quietly(emit: Emit, event: GenerationEvent) -> bool:
    """A failing callback ends its own request, never the batch or the worker."""
    try:
        emit(event)
    except Exception:
        return False
    return True


def end_job(job: Job, event: Finished | Failed) -> None:
    """Emit the request's one terminal event (a second one is dropped)."""
    if not job.ended:
        job.ended = True
        emit_quietly(job.emit, event)


def make_row(model: ServedModel, job: Job) -> Row | None:
    """The row for a tokenised job, or None after emitting ``Failed`` for a bad request."""
    import torch

    request = job.request
    try:
        lanes = model.lanes(request)
        check_sampling(request.temperature, request.top_p)
        if request.max_new_tokens < 1:
            raise RequestError("max_new_tokens must be at least 1", param="max_new_tokens")
        room = model.max_positions() - len(job.prompt)
        if room <= 0:  # also checked before the job reached this thread
            raise PromptTooLong(len(job.prompt), model.max_positions())
    except Exception as exc:
        end_job(job, Failed(exc))
        return None
    generator = None
    if not is_greedy(request.temperature):
        seed = job.seed if request.seed is None else request.seed
        generator = torch.Generator().manual_seed(seed)
    return Row(
        job=job,
        lanes=lanes.routes,
        weights=lanes.weights,
        decoder=IncrementalDecoder(model.tokenizer),
        stops=StopMatcher(request.stop),
        generator=generator,
        budget=min(request.max_new_tokens, room),
    )


def step_row(row: Row, logits: Any, eos: frozenset[int]) -> int | None:
    """Choose and stream this row's next token; None once the row has ended (for any reason)."""
    try:
        request = row.job.request
        token = choose(logits, request.temperature, request.top_p, row.generator)
        if _advance(row, token, eos):
            return token
    except Exception as exc:  # this row's failure, not the batch's
        fail_row(row, exc)
    row.done = True
    return None


def fail_row(row: Row, error: BaseException) -> None:
    row.done = True
    if not row.job.cancelled.is_set():
        end_job(row.job, Failed(error))
        row.job.cancelled.set()  # nothing more reaches this request


def _safe_emit(row: Row, event: GenerationEvent) -> None:
    if not emit_quietly(row.job.emit, event):
        row.job.cancelled.set()


def _advance(row: Row, token: int, eos: frozenset[int]) -> bool:
    """Feed one sampled token to its row; False once the row is done."""
    if row.job.cancelled.is_set():
        return False
    if token in eos:
        _finish(row, "end_turn")
        return False
    row.produced += 1
    text = row.stops.feed(row.decoder.push(token))
    if text:
        _safe_emit(row, TextDelta(text))
    if row.stops.stopped:
        _finish(row, "stop_sequence", flush=False)
        return False
    if row.produced >= row.budget:
        _finish(row, "max_tokens")
        return False
    return not row.job.cancelled.is_set()


def _finish(row: Row, reason: StopReason, *, flush: bool = True) -> None:
    if flush:
        tail = row.stops.feed(row.decoder.flush()) + row.stops.flush()
        if row.stops.stopped:
            reason = "stop_sequence"
        if tail:
            _safe_emit(row, TextDelta(tail))
    if not row.job.cancelled.is_set():
        end_job(row.job, Finished(reason, len(row.prompt), row.produced))
