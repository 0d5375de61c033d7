"""Acceptance 6 (auto-insertion): a route's ``prompt_cache:`` makes the gateway insert
``cachePoint`` blocks itself, only for models that take them, only once the prefix reaches the
model's (or the route's) minimum, never doubling the client's own points and never above the
model's checkpoints per request. What the Bedrock fake receives is the evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cache.prompt_models import base_model_id, lookup, table
from gateway.cache.prompt_points import CHARS_PER_TOKEN, insert_points
from gateway.canonical import ConverseRequest
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.pipeline.policy import PromptCachePolicy
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer, Reply
from tests.gateway.pipeline_harness import AUTH, gateway

POINT = {"cachePoint": {"type": "default"}}
SONNET = "anthropic.claude-3-7-sonnet-20250219-v1:0"  # 1,024 tokens per checkpoint, 4 points
NOVA = "amazon.nova-pro-v1:0"  # no tools caching
ALIASES = f"""\
  claude:
    targets: ["bedrock:us.{SONNET}"]
    prompt_cache: {{system: true, tools: true}}
  claude-turn:
    targets: ["bedrock:{SONNET}"]
    prompt_cache: {{system: true, tools: false, messages: true}}
  strict:
    targets: ["bedrock:{SONNET}"]
    prompt_cache: {{system: true, tools: true, min_tokens: 3000}}
  nova:
    targets: ["bedrock:{NOVA}"]
    prompt_cache: {{system: true, tools: true}}
  mixed:
    targets: ["bedrock:titan-text-express", "bedrock:{SONNET}"]
    prompt_cache: {{system: true, tools: true}}
  plain: "bedrock:{SONNET}"
"""


def words(tokens: int) -> str:
    """Text that the gateway's estimate puts at ``tokens`` tokens or a little more."""
    return ("lorem " * (tokens * CHARS_PER_TOKEN // 6 + 2))[: tokens * CHARS_PER_TOKEN + 6]


def tool(name: str, description: str = "") -> dict[str, Any]:
    spec = {"name": name, "description": description, "inputSchema": {"json": {"type": "object"}}}
    return {"toolSpec": spec}


def native(system: str, tools: list[dict[str, Any]] | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {
        "system": [{"text": system}],
        "messages": [{"role": "user", "content": [{"text": "what now?"}]}],
        **extra,
    }
    if tools:
        body["toolConfig"] = {"tools": tools}
    return body


def send(url: str, alias: str, body: dict[str, Any]) -> httpx.Response:
    r = httpx.post(f"{url}/model/{alias}/converse", json=body, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return r


def test_points_are_inserted_after_tools_and_system_for_a_supported_model(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    tools = [tool("search", words(1100))]
    with gateway(tmp_path, wire, ALIASES) as url:
        send(url, "claude", native(words(1100), tools))
        openai = {
            "model": "claude",
            "messages": [
                {"role": "system", "content": words(1100)},
                {"role": "user", "content": "what now?"},
            ],
        }
        r = httpx.post(f"{url}/v1/chat/completions", json=openai, headers=AUTH, timeout=30)
        assert r.status_code == 200, r.text
        send(url, "plain", native(words(1100), tools))  # no prompt_cache: nothing inserted
    first, second, plain = (c.body for c in wire.calls)
    assert first["toolConfig"]["tools"] == [*tools, POINT]
    assert first["system"] == [{"text": words(1100)}, POINT]
    assert first["messages"] == [{"role": "user", "content": [{"text": "what now?"}]}]
    assert second["system"] == [{"text": words(1100)}, POINT]  # the OpenAI surface too
    assert plain["system"] == [{"text": words(1100)}]
    assert plain["toolConfig"]["tools"] == tools


def test_no_point_below_the_minimum_and_the_second_needs_its_own_minimum(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    with gateway(tmp_path, wire, ALIASES) as url:
        send(url, "claude", native(words(900)))  # under Sonnet's 1,024
        send(url, "strict", native(words(2000)))  # under the route's own 3,000
        # Tools of 1,100 then a system of 500: a point after the tools, none after the system
        # (only 500 tokens since the last point).
        send(url, "claude", native(words(500), [tool("t", words(1100))]))
        send(url, "strict", native(words(3100)))
    short, strict_short, after_tools, strict_long = (c.body for c in wire.calls)
    assert short["system"] == [{"text": words(900)}]
    assert strict_short["system"] == [{"text": words(2000)}]
    assert after_tools["toolConfig"]["tools"][-1] == POINT
    assert after_tools["system"] == [{"text": words(500)}]
    assert strict_long["system"] == [{"text": words(3100)}, POINT]


def test_unsupported_models_and_fields_get_no_points(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    tools = [tool("t", words(1100))]
    wire.handler = lambda request: (
        Reply(error="ThrottlingException")
        if request.model_id == "titan-text-express"
        else Reply(text="ok")
    )
    with gateway(tmp_path, wire, ALIASES) as url:
        send(url, "nova", native(words(1100), tools))
        send(url, "mixed", native(words(1100), tools))
    nova = wire.calls[0].body
    assert nova["toolConfig"]["tools"] == tools  # Nova takes no cache point in tools
    assert nova["system"] == [{"text": words(1100)}, POINT]
    # The chain's first model has no prompt caching: its attempts went out untouched; the
    # fallback (Sonnet) got the points.
    titan = [c for c in wire.calls if c.model_id == "titan-text-express"]
    sonnet = [c for c in wire.calls if c.model_id == SONNET]
    assert titan and all(c.body["system"] == [{"text": words(1100)}] for c in titan)
    assert all("cachePoint" not in t for c in titan for t in c.body["toolConfig"]["tools"])
    assert sonnet[0].body["system"][-1] == POINT


def test_the_last_user_turn_gets_a_point_when_asked(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    body = {
        "system": [{"text": words(600)}],
        "messages": [
            {"role": "user", "content": [{"text": words(300)}]},
            {"role": "assistant", "content": [{"text": "noted"}]},
            {"role": "user", "content": [{"text": words(300)}]},
        ],
    }
    with gateway(tmp_path, wire, ALIASES) as url:
        send(url, "claude-turn", body)
    sent = wire.calls[0].body
    assert sent["system"] == body["system"]  # 600 < 1,024: no point after the system
    assert sent["messages"][:2] == body["messages"][:2]
    assert sent["messages"][2]["content"] == [{"text": words(300)}, POINT]  # 1,200 in all


def test_client_points_are_kept_never_doubled_and_count_towards_the_maximum(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    own = native(words(1100), [tool("t", words(1100))])
    own["system"].append(POINT)  # the client marked its own system prompt
    full = native(words(1100), [tool("t", words(1100))])
    full["messages"] = [
        {"role": "user", "content": [{"text": words(50)}, POINT, {"text": "a"}, POINT]},
        {"role": "assistant", "content": [{"text": "b"}, POINT]},
        {"role": "user", "content": [{"text": "c"}, POINT]},
    ]
    with gateway(tmp_path, wire, ALIASES) as url:
        send(url, "claude", own)
        send(url, "claude", full)
    first, second = (c.body for c in wire.calls)
    assert first["system"] == [{"text": words(1100)}, POINT]  # not doubled
    assert first["toolConfig"]["tools"][-1] == POINT  # the tools still got theirs
    # Four client points already: Sonnet's maximum, so none added anywhere.
    assert second["system"] == full["system"]
    assert second["toolConfig"] == full["toolConfig"]
    assert second["messages"] == full["messages"]


def test_budget_is_shared_with_the_clients_points() -> None:
    model = lookup(SONNET)
    assert model is not None and model.max_checkpoints == 4
    request = ConverseRequest.model_validate(
        {
            "system": [{"text": words(1100)}],
            "toolConfig": {"tools": [tool("t", words(1100))]},
            "messages": [
                {"role": "user", "content": [{"text": "x"}, POINT, {"text": "y"}, POINT]},
                {"role": "assistant", "content": [{"text": "z"}, POINT]},
                {"role": "user", "content": [{"text": "q"}]},
            ],
        }
    )
    out, where = insert_points(request, model, PromptCachePolicy())
    assert where == ["tools"]  # 3 of the client's + 1: the system point would be the fifth
    assert out.system == request.system
    assert out.toolConfig is not None and out.toolConfig["tools"][-1] == POINT
    assert request.toolConfig is not None and request.toolConfig["tools"][-1] != POINT  # copy


def test_a_route_whose_targets_cannot_cache_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "strata.yaml"
    config.write_text(
        "aliases:\n  chat:\n    targets: [bedrock:titan-text-express, local:tiny]\n"
        "    prompt_cache: {system: true}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="none of the targets takes prompt-cache points"):
        load_config(Settings(home=tmp_path / "home", config=config))


def test_the_model_table_is_data_with_sources() -> None:
    rows = table()
    assert SONNET in rows and NOVA in rows
    for row in rows.values():
        assert row.source and row.checked and row.min_tokens > 0 and row.max_checkpoints > 0
        assert row.ttl and "5m" in row.ttl
    assert "tools" not in rows[NOVA].fields
    assert base_model_id(f"us.{SONNET}") == SONNET
    assert base_model_id(f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET}") == SONNET
    assert lookup("arn:aws:bedrock:us-east-1:123456789012:custom-model/x") is None


def test_streams_get_the_points_too(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    with gateway(tmp_path, wire, ALIASES) as url:
        r = httpx.post(
            f"{url}/model/claude/converse-stream",
            json=native(words(1100)),
            headers=AUTH,
            timeout=30,
        )
        assert r.status_code == 200, r.text
    assert wire.calls[0].stream
    assert wire.calls[0].body["system"] == [{"text": words(1100)}, POINT]
