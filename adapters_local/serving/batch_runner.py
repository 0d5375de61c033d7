"""Generate for a batch of requests together: one padded forward per step, KV cache, per-row stops.

Rows are left-padded so that every row's next token sits in the last column. A row that finishes
(EOS, stop string, token limit, cancel) is dropped from the batch and from the cache, so the
remaining rows' steps get cheaper.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters_local.data.chat_format import prompt_ids
from adapters_local.serving.generation import (
    Emit,
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    StopReason,
    TextDelta,
)
from adapters_local.serving.sampling import choose, is_greedy
from adapters_local.serving.served_model import Route, ServedModel
from adapters_local.serving.streaming_text import IncrementalDecoder, StopMatcher


@dataclass
class Job:
    """A submitted request and its cancel flag (set from any thread)."""

    request: GenerationRequest
    emit: Emit
    seed: int
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Row:
    job: Job
    route: Route
    prompt: list[int]
    decoder: IncrementalDecoder
    stops: StopMatcher
    generator: Any
    budget: int
    produced: int = 0


def emit_quietly(emit: Emit, event: GenerationEvent) -> bool:
    """A failing callback ends its own request, never the batch or the worker."""
    try:
        emit(event)
    except Exception:
        return False
    return True


def _safe_emit(row: _Row, event: GenerationEvent) -> None:
    if not emit_quietly(row.job.emit, event):
        row.job.cancelled.set()


def _prepare(model: ServedModel, job: Job) -> _Row | None:
    import torch

    try:
        route = model.route(job.request.adapter)
        prompt = prompt_ids(model.tokenizer, job.request.messages)
        room = model.max_positions() - len(prompt)
        if room <= 0:
            raise ValueError(
                f"prompt is {len(prompt)} tokens; the model takes {model.max_positions()}"
            )
        if job.request.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
    except Exception as exc:
        emit_quietly(job.emit, Failed(exc))
        return None
    generator = None
    if not is_greedy(job.request.temperature):
        generator = torch.Generator().manual_seed(job.seed)
    return _Row(
        job=job,
        route=route,
        prompt=prompt,
        decoder=IncrementalDecoder(model.tokenizer),
        stops=StopMatcher(job.request.stop),
        generator=generator,
        budget=min(job.request.max_new_tokens, room),
    )


def run_batch(
    model: ServedModel, jobs: Sequence[Job], on_start: Callable[[int], None] | None = None
) -> int:
    """Generate for ``jobs`` to completion; returns how many rows ran together.

    ``on_start(rows)`` runs before the first token, so counters it updates are visible to anyone
    woken by this batch's events.
    """
    rows = [r for r in (_prepare(model, j) for j in jobs if not j.cancelled.is_set()) if r]
    if not rows:
        return 0
    if on_start is not None:
        on_start(len(rows))
    try:
        _generate(model, rows)
    except Exception as exc:
        for row in rows:
            if not row.job.cancelled.is_set():
                _safe_emit(row, Failed(exc))
    return len(rows)


def _generate(model: ServedModel, rows: list[_Row]) -> None:
    import torch
    from transformers import DynamicCache

    device = model.device
    pad = int(model.tokenizer.pad_token_id)
    width = max(len(r.prompt) for r in rows)
    input_ids = torch.tensor(
        [[pad] * (width - len(r.prompt)) + r.prompt for r in rows], device=device
    )
    mask = torch.tensor(
        [[0] * (width - len(r.prompt)) + [1] * len(r.prompt) for r in rows], device=device
    )
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    eos = model.eos_ids()
    with torch.inference_mode():
        logits = model.forward(input_ids, mask, positions, cache, [r.route for r in rows])
        while rows:
            next_ids = [
                choose(logits[i], r.job.request.temperature, r.job.request.top_p, r.generator)
                for i, r in enumerate(rows)
            ]
            keep = [
                i
                for i, (r, t) in enumerate(zip(rows, next_ids, strict=True))
                if _advance(r, t, eos)
            ]
            if not keep:
                return
            if len(keep) < len(rows):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, positions = mask[index], positions[index]
                rows = [rows[i] for i in keep]
                next_ids = [next_ids[i] for i in keep]
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=-1)
            positions = positions[:, -1:] + 1
            step_ids = torch.tensor(next_ids, device=device).unsqueeze(-1)
            logits = model.forward(step_ids, mask, positions, cache, [r.route for r in rows])


def _advance(row: _Row, token: int, eos: frozenset[int]) -> bool:
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


def _finish(row: _Row, reason: StopReason, *, flush: bool = True) -> None:
    if flush:
        tail = row.stops.feed(row.decoder.flush()) + row.stops.flush()
        if row.stops.stopped:
            reason = "stop_sequence"
        if tail:
            _safe_emit(row, TextDelta(tail))
    if not row.job.cancelled.is_set():
        _safe_emit(row, Finished(reason, len(row.prompt), row.produced))
