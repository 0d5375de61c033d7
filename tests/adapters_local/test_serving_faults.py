"""One bad row never fails the others (issue 7 items 1 and 3, issue 14 item 4), seeded sampling."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from adapters_local.models.loading import ModelError
from adapters_local.serving.engine import load_engine
from adapters_local.serving.generation import (
    ChatMessage,
    Failed,
    Finished,
    GenerationRequest,
    PromptTooLong,
)
from adapters_local.serving.sampling import SamplingError
from tests.adapters_local.serving_helpers import random_bottleneck, request, run_all


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("broken")
    engine = load_engine(
        "builtin",
        {"nan": random_bottleneck(folder / "nan", seed=0, fill=math.nan)},
        device="cpu",
        threads=1,
    )
    yield engine
    engine.close()


def test_tiny_temperature_is_greedy_and_fails_no_row(engine: Any) -> None:
    greedy = run_all(engine, [request("Copy: abcdef")])[0].text
    results = run_all(
        engine,
        [
            request("Copy: abcdef", temperature=1e-40),
            request("Copy: abcdef"),
            request("Copy: abcdef", temperature=1e-300, top_p=0.5),
            request("Copy: abcdef", temperature=0.7, seed=3),
        ],
    )
    assert all(isinstance(r.end, Finished) for r in results), [r.end for r in results]
    assert [r.text for r in results[:3]] == [greedy] * 3


def test_non_finite_settings_fail_only_their_row(engine: Any) -> None:
    bad_temperature, bad_top_p, fine = run_all(
        engine,
        [
            request("Copy: abc", temperature=math.nan),
            request("Copy: abc", temperature=1.0, top_p=math.inf),
            request("Copy: abc"),
        ],
    )
    for bad, field in ((bad_temperature, "temperature"), (bad_top_p, "top_p")):
        assert isinstance(bad.end, Failed) and isinstance(bad.end.error, SamplingError)
        assert field in str(bad.end.error)
    assert fine.text == "abc"


def test_a_row_whose_scores_are_nan_fails_alone(engine: Any) -> None:
    # The NaN adapter poisons its own row's logits; sampling from them must fail that row only.
    alone = [run_all(engine, [request(p)])[0].text for p in ("Copy: abcd", "Copy: wxyz")]
    poisoned, greedy_poisoned, *others = run_all(
        engine,
        [
            request("Copy: abcd", adapter="nan", temperature=1.0),
            request("Copy: abcd", adapter="nan"),
            request("Copy: abcd", temperature=1e-9),
            request("Copy: wxyz"),
        ],
    )
    assert isinstance(poisoned.end, Failed) and "non-finite" in str(poisoned.end.error)
    assert isinstance(greedy_poisoned.end, Failed)
    assert [o.text for o in others] == alone


def test_prompt_over_the_context_is_refused_before_generation(engine: Any) -> None:
    context = engine.context_length
    over, huge, fine = run_all(
        engine,
        [
            request("Copy: " + "a" * context),
            request("Copy: " + "b" * 4_000_000),  # 4 MB: refused after counting a prefix
            request("Copy: abc"),
        ],
    )
    assert isinstance(over.end, Failed) and isinstance(over.end.error, PromptTooLong)
    assert over.end.error.context_length == context
    assert over.end.error.prompt_tokens == context + len("Copy: ") + 3  # + role, end, opener
    assert isinstance(huge.end, Failed) and isinstance(huge.end.error, PromptTooLong)
    assert huge.end.error.prompt_tokens > context and "at least" in str(huge.end.error)
    assert not [e for e in over.events + huge.events if not isinstance(e, Failed)]
    assert fine.text == "abc"
    # Exactly the context is refused too: no room is left for one new token.
    exact = "c" * (context - len("Copy: ") - 3)
    at_limit = run_all(engine, [request("Copy: " + exact)])[0]
    assert isinstance(at_limit.end, Failed) and isinstance(at_limit.end.error, PromptTooLong)
    below = run_all(engine, [request("Copy: " + exact[:-1], max_new_tokens=3)])[0]
    assert isinstance(below.end, Finished) and below.end.stop_reason == "max_tokens"


def test_seeded_rows_repeat_alone_and_batched(engine: Any) -> None:
    def sampled(seed: int) -> GenerationRequest:
        return GenerationRequest(
            (ChatMessage("user", "Copy: abcdefgh"),), temperature=3.0, max_new_tokens=12, seed=seed
        )

    alone = [run_all(engine, [sampled(s)])[0].text for s in (11, 12)]
    batched = run_all(engine, [sampled(12), request("Copy: zz"), sampled(11), sampled(12)])
    assert [batched[2].text, batched[0].text, batched[3].text] == [alone[0], alone[1], alone[1]]
    assert alone[0] != alone[1]  # the seed decides the samples


def test_thread_count_is_a_setting_or_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters_local.serving.threads import available_cores, candidates

    assert candidates(1) == [1] and candidates(6) == [1, 2, 4, 6]
    monkeypatch.setenv("STRATA_LOCAL_THREADS", "3")
    configured = load_engine("builtin", device="cpu")
    try:
        run_all(configured, [request("Copy: a")])  # the worker sets threads before serving
        assert configured.stats.threads == 3
    finally:
        configured.close()
    monkeypatch.setenv("STRATA_LOCAL_THREADS", "many")
    with pytest.raises(ModelError, match="STRATA_LOCAL_THREADS"):
        load_engine("builtin", device="cpu")
    monkeypatch.delenv("STRATA_LOCAL_THREADS")
    measured = load_engine("builtin", device="cpu")
    try:
        assert run_all(measured, [request("Copy: ab")])[0].text == "ab"
        assert measured.stats.threads in candidates(available_cores())
    finally:
        measured.close()
