"""Blobs on the Bedrock-native surface: base64 on the wire, bytes in canonical objects."""

from __future__ import annotations

import base64

import orjson
import pytest

from gateway.canonical import ConverseResponse
from gateway.errors import InvalidRequest
from gateway.wire.bedrock import dump_response, frame_event, parse_converse
from gateway.wire.eventstream import EventStreamDecoder

PNG = b"\x89PNG\r\n\x1a\nrest"


def test_request_blobs_decode_wherever_the_model_has_them() -> None:
    b64 = base64.b64encode(PNG).decode()
    request = parse_converse(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"image": {"format": "png", "source": {"bytes": b64}}},
                        {
                            "toolResult": {
                                "toolUseId": "t",
                                "content": [{"image": {"format": "png", "source": {"bytes": b64}}}],
                            }
                        },
                    ],
                }
            ]
        }
    )
    blocks = request.model_dump(exclude_none=True)["messages"][0]["content"]
    assert blocks[0]["image"]["source"]["bytes"] == PNG
    assert blocks[1]["toolResult"]["content"][0]["image"]["source"]["bytes"] == PNG


def test_bad_base64_is_a_400() -> None:
    with pytest.raises(InvalidRequest):
        parse_converse(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"image": {"format": "png", "source": {"bytes": "abc"}}}],
                    }
                ]
            }
        )


def test_binary_response_fields_go_out_as_base64() -> None:
    response = ConverseResponse.model_validate(
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"reasoningContent": {"redactedContent": b"\x00\x01secret"}},
                        {"text": "ok"},
                    ],
                }
            },
            "stopReason": "end_turn",
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        }
    )
    body = orjson.loads(dump_response(response))
    redacted = body["output"]["message"]["content"][0]["reasoningContent"]["redactedContent"]
    assert base64.b64decode(redacted) == b"\x00\x01secret"


def test_binary_stream_payloads_are_framed() -> None:
    frame = frame_event(
        {
            "contentBlockDelta": {  # type: ignore[typeddict-item]
                "delta": {"reasoningContent": {"redactedContent": b"\xff"}},
                "contentBlockIndex": 0,
            }
        }
    )
    (message,) = EventStreamDecoder().feed(frame)
    payload = orjson.loads(message.payload)
    assert base64.b64decode(payload["delta"]["reasoningContent"]["redactedContent"]) == b"\xff"
