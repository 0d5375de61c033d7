"""The inference engine: batching across adapters, streaming, stops, limits, cancel, errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters_local.data.chat_format import prompt_ids
from adapters_local.data.tasks import NEW_TASKS
from adapters_local.serving.engine import load_engine
from adapters_local.serving.generation import (
    ChatMessage,
    Failed,
    Finished,
    GenerationEvent,
    TextDelta,
)
from tests.adapters_local.serving_helpers import Collector
from tests.adapters_local.serving_helpers import request as _request
from tests.adapters_local.serving_helpers import run_all as _run_all


@pytest.fixture(scope="module")
def engine(lora_rot13: Any, lora_shift1: Any, bottleneck_houlsby: Any) -> Iterator[Any]:
    engine = load_engine(
        "builtin",
        {
            "a": lora_rot13.folder,
            "b": lora_shift1.folder,
            "h": bottleneck_houlsby.folder,
            "mix_a": "weighted:a=1.0,b=0.0",
            "a_then_h": "stack:a+h",
        },
        device="cpu",
    )
    yield engine
    engine.close()


WORDS = ["hello", "strata", "zebra", "quick", "mixed"]


def test_concurrent_requests_for_different_adapters_share_one_batch(engine: Any) -> None:
    rot13, shift1 = NEW_TASKS["rot13"].solve, NEW_TASKS["shift1"].solve
    requests = [
        _request(f"Encode: {w}", adapter=adapter) for w in WORDS for adapter in ("a", "b", None)
    ]
    before, admitted = len(engine.stats.batch_sizes), engine.stats.requests
    results = _run_all(engine, requests)
    sizes = engine.stats.batch_sizes[before:]
    assert max(sizes) > 1 and engine.stats.requests - admitted == len(requests)
    # Sharing a batch changes no answer: each equals what the request gets alone.
    for request, batched in zip(requests, results, strict=True):
        assert _run_all(engine, [request])[0].text == batched.text
    # And each row really ran its own adapter. The adapters come from the default training
    # recipe, which promises held-out accuracy, not every word: most, not all, must be right.
    right_a = right_b = 0
    for index, word in enumerate(WORDS):
        got_a, got_b, got_base = (r.text for r in results[3 * index : 3 * index + 3])
        right_a += got_a == rot13(word)
        right_b += got_b == shift1(word)
        assert got_base not in (rot13(word), shift1(word))
    assert right_a >= len(WORDS) - 1 and right_b >= len(WORDS) - 1, (right_a, right_b)


def test_finished_counts_real_tokens_and_end_turn(engine: Any) -> None:
    result = _run_all(engine, [_request("Reverse: abcdef")])[0]
    assert result.text == "fedcba"
    end = result.end
    assert isinstance(end, Finished) and end.stop_reason == "end_turn"
    prompt = prompt_ids(engine.tokenizer, (ChatMessage("user", "Reverse: abcdef"),))
    assert end.input_tokens == len(prompt)
    assert end.output_tokens == 6
    deltas = [e.text for e in result.events if isinstance(e, TextDelta)]
    assert deltas == list("fedcba")  # one delta per token


def test_max_tokens_and_stop_sequences(engine: Any) -> None:
    limited, stopped, unmatched = _run_all(
        engine,
        [
            _request("Copy: abcdefgh", max_new_tokens=3),
            _request("Copy: abcdefgh", stop=("de",)),
            _request("Copy: abcdefgh", stop=("xyz",)),
        ],
    )
    assert limited.text == "abc"
    assert isinstance(limited.end, Finished)
    assert (limited.end.stop_reason, limited.end.output_tokens) == ("max_tokens", 3)
    assert stopped.text == "abc"
    assert isinstance(stopped.end, Finished) and stopped.end.stop_reason == "stop_sequence"
    assert unmatched.text == "abcdefgh"
    assert isinstance(unmatched.end, Finished) and unmatched.end.stop_reason == "end_turn"


def test_weighted_mix_and_stack_routes(engine: Any) -> None:
    word = "lattice"
    a, mix, h, stacked = _run_all(
        engine,
        [
            _request(f"Encode: {word}", adapter="a"),
            _request(f"Encode: {word}", adapter="mix_a"),
            _request(f"Encode: {word}", adapter="h"),
            _request(f"Encode: {word}", adapter="a_then_h"),
        ],
    )
    assert mix.text == a.text == NEW_TASKS["rot13"].solve(word)  # weight 1 on a, 0 on b
    assert stacked.text not in (a.text, h.text)  # both adapters act on the stacked route
    alone = _run_all(engine, [_request(f"Encode: {word}", adapter="a_then_h")])[0]
    assert alone.text == stacked.text
    assert set(engine.adapter_names) == {"a", "b", "h", "mix_a", "a_then_h"}


def test_sampling_is_seeded_and_differs_from_greedy(lora_rot13: Any) -> None:
    texts = []
    for _ in range(2):
        engine = load_engine("builtin", device="cpu")
        try:
            request = _request("Copy: abcdefgh", temperature=5.0, top_p=0.99)
            texts.append([r.text for r in _run_all(engine, [request, request])])
        finally:
            engine.close()
    assert texts[0] == texts[1]  # same seed, same order: same samples
    assert texts[0][0] != texts[0][1]  # each request draws its own stream


def test_errors_fail_the_request_not_the_engine(engine: Any) -> None:
    unknown, fine = _run_all(engine, [_request("Copy: abc", adapter="nope"), _request("Copy: abc")])
    assert isinstance(unknown.end, Failed) and "nope" in str(unknown.end.error)
    assert fine.text == "abc"

    def explode(event: GenerationEvent) -> None:
        raise RuntimeError("client went away")

    engine.submit(_request("Copy: abcdef"), explode)
    assert _run_all(engine, [_request("Copy: xyz")])[0].text == "xyz"


def test_cancel_stops_a_request(engine: Any) -> None:
    collector = Collector()
    cancel_holder: list[Any] = []
    cancelled = threading.Event()

    def emit(event: GenerationEvent) -> None:
        collector(event)
        if isinstance(event, TextDelta) and not cancelled.is_set():
            cancelled.set()
            cancel_holder[0]()

    cancel_holder.append(engine.submit(_request("Copy: abcdefgh"), emit))
    other = _run_all(engine, [_request("Copy: abcdefgh")])[0]
    assert other.text == "abcdefgh"
    assert cancelled.is_set()
    assert collector.text == "a"  # nothing after the cancel, and no Finished
    assert not any(isinstance(e, Finished | Failed) for e in collector.events)


def test_closed_engine_fails_new_requests() -> None:
    engine = load_engine("builtin", device="cpu")
    engine.close()
    result = _run_all(engine, [_request("Copy: abc")])[0]
    assert isinstance(result.end, Failed)


def test_folder_without_chat_template_is_refused_at_load(tmp_path: Path) -> None:
    import json
    import shutil

    from adapters_local.models.loading import BUILTIN_DIR, ModelError

    folder = tmp_path / "no-template"
    shutil.copytree(BUILTIN_DIR, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="no chat template"):
        load_engine(str(folder))
