"""Acceptance 4: OpenAI ⇄ Converse translation, table-driven, on plain dicts."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.canonical import ConverseResponse
from gateway.errors import InvalidRequest
from gateway.wire.openai_request import parse_chat_request
from gateway.wire.openai_response import ChunkTranslator, finish_reason, to_chat_completion

USER = {"role": "user", "content": "hi"}

REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "plain user message",
        {"model": "m", "messages": [USER]},
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    ),
    (
        "system and developer messages become system blocks, in order",
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "a"},
                {"role": "developer", "content": "b"},
                USER,
            ],
        },
        {
            "system": [{"text": "a"}, {"text": "b"}],
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        },
    ),
    (
        "multi-part system prompt keeps each part",
        {
            "model": "m",
            "messages": [
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "rule 1"},
                        {"type": "text", "text": "rule 2"},
                    ],
                },
                USER,
            ],
        },
        {
            "system": [{"text": "rule 1"}, {"text": "rule 2"}],
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        },
    ),
    (
        "max_completion_tokens wins over max_tokens; sampling and stop map",
        {
            "model": "m",
            "messages": [USER],
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop": "###",
        },
        {
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {
                "maxTokens": 20,
                "temperature": 0.5,
                "topP": 0.9,
                "stopSequences": ["###"],
            },
        },
    ),
    (
        "max_tokens alone and a stop list",
        {"model": "m", "messages": [USER], "max_tokens": 7, "stop": ["a", "b"]},
        {
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": 7, "stopSequences": ["a", "b"]},
        },
    ),
    (
        "user content parts",
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}],
                }
            ],
        },
        {"messages": [{"role": "user", "content": [{"text": "x"}, {"text": "y"}]}]},
    ),
    (
        "tools, tool_choice=required, an assistant tool call and its result",
        {
            "model": "m",
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "weather",
                        "description": "get weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    },
                }
            ],
            "tool_choice": "required",
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "rainy"},
            ],
        },
        {
            "messages": [
                {"role": "user", "content": [{"text": "hi"}]},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "toolUse": {
                                "toolUseId": "call_1",
                                "name": "weather",
                                "input": {"city": "Oslo"},
                            }
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"toolResult": {"toolUseId": "call_1", "content": [{"text": "rainy"}]}}
                    ],
                },
            ],
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "weather",
                            "description": "get weather",
                            "inputSchema": {
                                "json": {
                                    "type": "object",
                                    "properties": {"city": {"type": "string"}},
                                }
                            },
                        }
                    }
                ],
                "toolChoice": {"any": {}},
            },
        },
    ),
    (
        "two tool results in a row merge into one user turn; named tool_choice",
        {
            "model": "m",
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": "calling",
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {"id": "b", "type": "function", "function": {"name": "f", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "tool", "tool_call_id": "b", "content": "2"},
            ],
        },
        {
            "messages": [
                {"role": "user", "content": [{"text": "hi"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"text": "calling"},
                        {"toolUse": {"toolUseId": "a", "name": "f", "input": {}}},
                        {"toolUse": {"toolUseId": "b", "name": "f", "input": {}}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"toolResult": {"toolUseId": "a", "content": [{"text": "1"}]}},
                        {"toolResult": {"toolUseId": "b", "content": [{"text": "2"}]}},
                    ],
                },
            ],
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "f",
                            "inputSchema": {"json": {"type": "object", "properties": {}}},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": "f"}},
            },
        },
    ),
    (
        "tool_choice none drops the tools",
        {
            "model": "m",
            "messages": [USER],
            "tool_choice": "none",
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    ),
]


@pytest.mark.parametrize(
    ("name", "openai_body", "converse"), REQUESTS, ids=[r[0] for r in REQUESTS]
)
def test_request_to_converse(
    name: str, openai_body: dict[str, Any], converse: dict[str, Any]
) -> None:
    _, canonical = parse_chat_request(openai_body)
    assert canonical.model_dump(exclude_none=True) == converse


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"messages": [USER]}, "model"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
    ({"model": "m", "messages": [USER], "max_tokens": 0}, "max_tokens"),
    ({"model": "m", "messages": [USER], "temperature": "hot"}, "temperature"),
    ({"model": "m", "messages": [{"role": "system", "content": "only system"}]}, "messages"),
    ({"model": "m", "messages": [{"role": "assistant", "content": "first"}]}, "messages"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages.0.tool_call_id"),
    (
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
                    ],
                }
            ],
        },
        "messages.0.content.0",
    ),
    (
        {
            "model": "m",
            "messages": [USER],
            "tool_choice": "sometimes",
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
        "tool_choice",
    ),
    ({"model": "m", "messages": [USER], "n": 2}, "n"),
]


@pytest.mark.parametrize(("body", "param"), BAD_REQUESTS)
def test_bad_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(body)
    assert info.value.param == param
    assert info.value.message.startswith(param)


def test_data_url_image_becomes_bytes() -> None:
    _, canonical = parse_chat_request(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,aGVsbG8="},
                        }
                    ],
                }
            ],
        }
    )
    block = canonical.messages[0].content[0].model_dump(exclude_none=True)
    assert block == {"image": {"format": "png", "source": {"bytes": b"hello"}}}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("content_filtered", "content_filter"),
        ("guardrail_intervened", "content_filter"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    assert finish_reason(stop_reason) == finish


def _response(content: list[dict[str, Any]], stop: str, usage: dict[str, int]) -> ConverseResponse:
    return ConverseResponse.model_validate(
        {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": usage,
            "metrics": {"latencyMs": 5},
        }
    )


RESPONSES: list[tuple[str, ConverseResponse, dict[str, Any], str, dict[str, Any]]] = [
    (
        "text",
        _response(
            [{"text": "a"}, {"text": "b"}],
            "end_turn",
            {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
        ),
        {"role": "assistant", "content": "ab"},
        "stop",
        {
            "prompt_tokens": 3,
            "completion_tokens": 2,
            "total_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    ),
    (
        "tool use with cache tokens",
        _response(
            [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {"x": 1}}}],
            "tool_use",
            {
                "inputTokens": 3,
                "outputTokens": 2,
                "totalTokens": 12,
                "cacheReadInputTokens": 4,
                "cacheWriteInputTokens": 3,
            },
        ),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}
            ],
        },
        "tool_calls",
        {
            "prompt_tokens": 10,
            "completion_tokens": 2,
            "total_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 4},
        },
    ),
]


@pytest.mark.parametrize(
    ("name", "resp", "message", "finish", "usage"), RESPONSES, ids=[r[0] for r in RESPONSES]
)
def test_response_to_openai(
    name: str, resp: ConverseResponse, message: dict[str, Any], finish: str, usage: dict[str, Any]
) -> None:
    out = to_chat_completion(resp, model="alias", id="chatcmpl-1", created=7)
    assert out["object"] == "chat.completion"
    assert out["model"] == "alias"
    assert out["choices"][0]["message"] == message
    assert out["choices"][0]["finish_reason"] == finish
    assert out["usage"] == usage


def test_stream_translation_with_tool_calls_and_usage() -> None:
    events: list[Any] = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Let me check."}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {
            "contentBlockStart": {
                "start": {"toolUse": {"toolUseId": "t9", "name": "f"}},
                "contentBlockIndex": 1,
            }
        },
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"a":'}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": "1}"}}, "contentBlockIndex": 1}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
        {
            "metadata": {
                "usage": {"inputTokens": 5, "outputTokens": 6, "totalTokens": 11},
                "metrics": {"latencyMs": 1},
            }
        },
    ]
    translator = ChunkTranslator(model="m", id="c", created=1, include_usage=True)
    chunks = [c for e in events for c in translator.translate(e)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"content": "Let me check."}
    assert deltas[2]["tool_calls"][0] == {
        "index": 0,
        "id": "t9",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    args = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[3:5])
    assert args == '{"a":1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 11
    assert all(c["usage"] is None for c in chunks[:-1])
