"""Acceptance 7: near-duplicate prompts are served from the cache (``x-strata-cache:
semantic-hit`` with the similarity), unrelated ones and near misses are not, and nothing
crosses tenants, arms or conversations; both vector stores, both embedders (the local one and
Titan Text Embeddings v2 through InvokeModel on the Bedrock fake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.accounting.store import Database
from tests.cache.conftest import cached_gateway, tenant_key
from tests.fakes.bedrock_wire import BedrockWireServer, Reply
from tests.gateway.pipeline_harness import AUTH

ALIASES = """\
  faq:
    targets: ["bedrock:base-model"]
    cache: {ttl_s: 60}
    semantic_cache: {threshold: 0.92}
  faq-titan:
    targets: ["bedrock:base-model"]
    cache: {ttl_s: 60}
    semantic_cache: {threshold: 0.92, embedder: "bedrock:amazon.titan-embed-text-v2:0"}
  exact-only:
    targets: ["bedrock:base-model"]
    cache: {ttl_s: 60}
"""


def ask(
    client: httpx.Client,
    text: str,
    model: str = "faq",
    system: str | None = None,
    temperature: float = 0,
    **extra: Any,
) -> httpx.Response:
    messages: list[dict[str, Any]] = [{"role": "user", "content": text}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    body = {"model": model, "messages": messages, "temperature": temperature, **extra}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    return r


def answer_of(r: httpx.Response) -> str:
    return str(r.json()["choices"][0]["message"]["content"])


def test_a_paraphrase_is_a_semantic_hit_and_near_misses_are_not(
    backend: str, prefix: str, tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    wire.handler = lambda request: Reply(text=f"answer to: {request.last_user_text}")
    with (
        cached_gateway(tmp_path, wire, backend, prefix=prefix, aliases=ALIASES) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        first = ask(client, "How do I reset my password?")
        assert first.headers["x-strata-cache"] == "miss"
        near = ask(client, "how can I reset my password")
        assert near.headers["x-strata-cache"] == "semantic-hit"
        assert float(near.headers["x-strata-cache-similarity"]) >= 0.92
        assert near.headers["x-strata-attempts"] == "0"
        assert answer_of(near) == answer_of(first) == "answer to: How do I reset my password?"
        assert len(wire.calls) == 1
        # Same words, different question: its own upstream call.
        other = ask(client, "How do I reset my username?")
        assert other.headers["x-strata-cache"] == "miss"
        assert "x-strata-cache-similarity" not in other.headers
        assert answer_of(other) == "answer to: How do I reset my username?"
        # The exact cache is looked at first.
        assert ask(client, "How do I reset my password?").headers["x-strata-cache"] == "hit"
        # A different system prompt is a different conversation: never a near duplicate.
        assert (
            ask(client, "how can I reset my password", system="Answer in French").headers[
                "x-strata-cache"
            ]
            == "miss"
        )
        # Temperature above 0: not cached at all (the route's exact-cache rules apply).
        warm = ask(client, "how can I reset my password", temperature=0.7)
        assert warm.headers["x-strata-cache"] == "bypass"
        # A route without semantic_cache serves exact matches only.
        ask(client, "How do I reset my password?", model="exact-only")
        assert (
            ask(client, "how can I reset my password", model="exact-only").headers["x-strata-cache"]
            == "miss"
        )
    assert len(wire.calls) == 6
    rows = Database(None, tmp_path / "home").query(
        "SELECT cache_hit, cost_pusd FROM ledger ORDER BY rowid"
    )
    assert [bool(r[0]) for r in rows][:2] == [False, True]  # the semantic hit is a cache hit
    assert rows[1][1] == 0


def test_semantic_entries_never_cross_tenants(
    backend: str, prefix: str, tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    other = tenant_key(tmp_path, "globex")
    wire.handler = lambda request: Reply(text=f"answer to: {request.last_user_text}")
    with (
        cached_gateway(tmp_path, wire, backend, prefix=prefix, aliases=ALIASES) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {other}"}, timeout=30
        ) as globex,
    ):
        assert ask(client, "What is the refund policy?").headers["x-strata-cache"] == "miss"
        # Another tenant's paraphrase of it: a miss and its own upstream call.
        r = ask(globex, "what's the refund policy")
        assert r.headers["x-strata-cache"] == "miss"
        assert "x-strata-cache-similarity" not in r.headers
        # Each tenant's paraphrases are then served from its own entry, never the other's.
        theirs = ask(globex, "What is the refund policy?")
        assert theirs.headers["x-strata-cache"] == "semantic-hit"
        assert answer_of(theirs) == "answer to: what's the refund policy"
        ours = ask(client, "what's the refund policy?")
        assert ours.headers["x-strata-cache"] == "semantic-hit"
        assert answer_of(ours) == "answer to: What is the refund policy?"
    assert len(wire.calls) == 2


def test_a_streamed_paraphrase_replays_as_a_stream(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    with (
        cached_gateway(tmp_path, wire, "memory", aliases=ALIASES) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        body = {
            "model": "faq",
            "stream": True,
            "temperature": 0,
            "stream_options": {"include_usage": True},
        }
        texts = []
        for text, expect in (
            ("Why is the sky blue?", "miss"),
            ("why is the sky blue", "semantic-hit"),
        ):
            payload = {**body, "messages": [{"role": "user", "content": text}]}
            with client.stream("POST", "/v1/chat/completions", json=payload) as r:
                assert r.status_code == 200
                assert r.headers["x-strata-cache"] == expect
                assert r.headers["content-type"].startswith("text/event-stream")
                raw = r.read().decode()
            chunks = [
                orjson.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")
            ]
            texts.append(
                "".join(
                    c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
                )
            )
        assert texts[0] == texts[1] != ""
    assert len(wire.calls) == 1


def test_titan_embeddings_through_invoke_model(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    with (
        cached_gateway(tmp_path, wire, "memory", aliases=ALIASES) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        assert (
            ask(client, "Opening hours of the Berlin office?", "faq-titan").headers[
                "x-strata-cache"
            ]
            == "miss"
        )
        # The fake's Titan vectors are bags of words: the same words in another order match.
        near = ask(client, "of the Berlin office: opening hours", "faq-titan")
        assert near.headers["x-strata-cache"] == "semantic-hit"
        assert float(near.headers["x-strata-cache-similarity"]) >= 0.92
        unrelated = ask(client, "Opening hours of the Lisbon office?", "faq-titan")
        assert unrelated.headers["x-strata-cache"] == "miss"
        # Titan throttled: the lookup is a miss, the call goes on and answers.
        wire.app.invoke_error = "ThrottlingException"
        throttled = ask(client, "the Berlin office opening hours, please", "faq-titan")
        assert throttled.headers["x-strata-cache"] == "miss"
        stats = client.get("/admin/cache").json()
    invoked = wire.app.invocations
    assert [b["inputText"] for b in invoked[:3]] == [
        "Opening hours of the Berlin office?",
        "of the Berlin office: opening hours",
        "Opening hours of the Lisbon office?",
    ]
    assert all(b["dimensions"] == 512 and b["normalize"] is True for b in invoked)
    assert len(wire.calls) == 3  # converse calls: the first, the Lisbon one, the throttled one
    assert stats["semantic_hits"] == 1 and stats["semantic_errors"] >= 1
