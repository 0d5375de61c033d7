"""The fake's fault scripts and counters, which the resilience tests and bench.faults rely on."""

from __future__ import annotations

import httpx

from tests.fakes.bedrock_faults import by_model, delayed, hard_down, seeded_faults
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest


def request(text: str, model: str = "m") -> FakeRequest:
    body = {"messages": [{"role": "user", "content": [{"text": text}]}]}
    return FakeRequest(index=0, model_id=model, body=body, headers={}, stream=False)


def test_seeded_faults_rate_and_reproducibility() -> None:
    handler = seeded_faults(0.3, seed=1, key=lambda r: r.last_user_text)
    first = [handler(request(f"r{i}")).error for i in range(10_000)]
    assert abs(sum(e is not None for e in first) / 10_000 - 0.3) < 0.02
    assert set(first) == {None, "ThrottlingException"}
    # Same seed, same keys, any order: the same verdicts.
    again = seeded_faults(0.3, seed=1, key=lambda r: r.last_user_text)
    order = list(range(10_000))[::-1]
    assert [again(request(f"r{i}")).error for i in order] == [first[i] for i in order]
    # The n-th call for one key gets the n-th draw for it: retries are fresh draws.
    draws = [handler(request("r0")).error for _ in range(50)]
    assert len(set(draws)) == 2


def test_hard_down_by_model_and_delayed() -> None:
    handler = by_model({"down": hard_down()}, delayed(0.5))
    assert handler(request("x", "down")).error == "ServiceUnavailableException"
    up = handler(request("x", "up"))
    assert (up.error, up.text, up.latency_s) == (None, "x", 0.5)


def test_counts_per_model_and_stats_route() -> None:
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    with BedrockWireServer() as server:
        for model in ("a", "b", "a"):
            httpx.post(f"{server.endpoint_url}/model/{model}/converse", json=body)
        assert server.counts == {"a": 2, "b": 1}
        stats = httpx.get(f"{server.endpoint_url}/_stats").json()
    assert stats == {"served": 3, "by_model": {"a": 2, "b": 1}}
