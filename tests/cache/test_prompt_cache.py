"""Acceptance 6 (in part): Bedrock prompt caching end to end. ``cachePoint`` passes through the
native surface; OpenAI ``cache_control: {"type": "ephemeral"}`` on system parts, content parts
and tools arrives at the fake as ``cachePoint``; the fake's cache token usage reaches the client
(``prompt_tokens_details.cached_tokens``) and the ledger prices it at its own rates."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx

from gateway.accounting.store import Database
from tests.fakes.bedrock_wire import BedrockWireServer, Reply
from tests.gateway.pipeline_harness import AUTH, gateway

POINT = {"cachePoint": {"type": "default"}}
ALIASES = """\
  chat: "bedrock:cached-model"
prices:
  "bedrock:cached-model": {input_per_mtok: 3, output_per_mtok: 15, cache_read_per_mtok: 0.3,
                           cache_write_per_mtok: 3.75}
"""


def test_native_cache_points_reach_the_fake_unchanged(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    body = {
        "system": [{"text": "long instructions"}, POINT],
        "messages": [{"role": "user", "content": [{"text": "document"}, POINT, {"text": "q"}]}],
        "toolConfig": {
            "tools": [
                {"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}},
                POINT,
            ]
        },
    }
    with gateway(tmp_path, wire, ALIASES) as url:
        r = httpx.post(f"{url}/model/chat/converse", json=body, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    sent = wire.calls[0].body
    assert sent["system"] == body["system"]
    assert sent["messages"] == body["messages"]
    assert sent["toolConfig"]["tools"] == body["toolConfig"]["tools"]


def test_openai_cache_control_becomes_cache_points_and_cached_tokens_are_priced(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    wire.handler = lambda request: Reply(
        text="ok", input_tokens=10, output_tokens=2, cache_read_tokens=1000, cache_write_tokens=200
    )
    ephemeral = {"type": "ephemeral"}
    body = {
        "model": "chat",
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "rules", "cache_control": ephemeral}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "doc", "cache_control": ephemeral},
                    {"type": "text", "text": "question"},
                ],
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object"}},
                "cache_control": ephemeral,
            }
        ],
    }
    with gateway(tmp_path, wire, ALIASES) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=30)
        bad = httpx.post(
            f"{url}/v1/chat/completions",
            json={**body, "tools": [{**body["tools"][0], "cache_control": {"type": "forever"}}]},
            headers=AUTH,
            timeout=30,
        )
    assert r.status_code == 200, r.text
    sent = wire.calls[0].body
    assert sent["system"] == [{"text": "rules"}, POINT]
    assert sent["messages"][0]["content"] == [{"text": "doc"}, POINT, {"text": "question"}]
    assert sent["toolConfig"]["tools"][1] == POINT
    assert r.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 1000
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "tools.0.cache_control"
    assert len(wire.calls) == 1
    # $3 in, $15 out, $0.30 cache read, $3.75 cache write per million tokens.
    expected = (
        Decimal(3) * 10 + Decimal(15) * 2 + Decimal("0.3") * 1000 + Decimal("3.75") * 200
    ) / 10**6
    (row,) = Database(None, tmp_path / "home").query(
        "SELECT cost_pusd, cache_read_tokens, cache_write_tokens, cache_savings_pusd FROM ledger"
    )
    assert tuple(row) == (
        int(expected * 10**12),
        1000,
        200,
        int((Decimal(3) - Decimal("0.3")) * 1000 / 10**6 * 10**12),
    )
