"""Continuous batching: requests join a running batch and answer as they would alone."""

from __future__ import annotations

import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters_local.serving.engine import load_engine
from adapters_local.serving.generation import Finished, GenerationEvent, TextDelta
from tests.adapters_local.serving_helpers import (
    Collector,
    random_bottleneck,
    random_lora,
    request,
    run_all,
)

LONG = (string.ascii_lowercase * 4)[:90]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("adapters")
    engine = load_engine(
        "builtin",
        {
            "lora": random_lora(folder / "lora", seed=1),
            "bn": random_bottleneck(folder / "bn", seed=2),
        },
        device="cpu",
        threads=1,
    )
    yield engine
    engine.close()


def test_requests_join_a_running_batch_and_answer_as_alone(engine: Any) -> None:
    # Newcomers with prompts shorter and longer than the running row's cache, on other adapters.
    joiners = [
        request("Copy: abc", max_new_tokens=4),
        request("Reverse: " + LONG[:60] + "xyz" * 30, max_new_tokens=6, adapter="lora"),
        request("Copy: hello", max_new_tokens=5, adapter="bn"),
    ]
    long_request = request(f"Copy: {LONG}", max_new_tokens=80)
    alone = [run_all(engine, [r])[0].text for r in [long_request, *joiners]]
    assert len(set(alone)) == len(alone)  # each adapter answers differently

    joined_before = engine.stats.joins
    finish_order: list[str] = []
    late = [Collector() for _ in joiners]
    submitted = threading.Event()

    def on_long(event: GenerationEvent) -> None:
        long_collector(event)
        deltas = sum(isinstance(e, TextDelta) for e in long_collector.events)
        if deltas == 3 and not submitted.is_set():
            submitted.set()
            for generation, collector in zip(joiners, late, strict=True):
                engine.submit(generation, _tracked(collector, finish_order, generation.adapter))
            # Let the tokenizer threads queue them while this row is still decoding.
            time.sleep(0.3)
        if isinstance(event, Finished):
            finish_order.append("long")

    long_collector = Collector()
    engine.submit(long_request, on_long)
    long_collector.wait()
    together = [long_collector.text, *(c.wait().text for c in late)]

    assert together == alone
    assert engine.stats.joins > joined_before
    assert finish_order[-1] == "long"  # the short newcomers did not wait for the long row
    assert isinstance(long_collector.end, Finished) and long_collector.end.output_tokens == 80


def _tracked(collector: Collector, order: list[str], name: str | None) -> Any:
    def emit(event: GenerationEvent) -> None:
        collector(event)
        if isinstance(event, Finished):
            order.append(name or "base")

    return emit


def test_rows_beyond_the_batch_limit_wait_and_still_answer(tmp_path: Path) -> None:
    small = load_engine("builtin", device="cpu", max_batch_size=2, threads=1)
    try:
        prompts = [f"Copy: {word}" for word in ("abc", "defg", "hij", "klmno", "pq")]
        alone = [run_all(small, [request(p)])[0].text for p in prompts]
        together = [c.text for c in run_all(small, [request(p) for p in prompts])]
        assert together == alone
        assert max(small.stats.batch_sizes) <= 2
    finally:
        small.close()
