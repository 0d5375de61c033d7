"""Canonical Converse response and stream events → OpenAI chat-completions shapes (pure)."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.canonical import ConverseResponse, StreamEvent

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "end_turn", "stop")


def usage_to_openai(usage: dict[str, Any]) -> dict[str, Any]:
    """Converse usage → OpenAI usage.

    Bedrock counts cached prompt tokens apart from ``inputTokens``; OpenAI's ``prompt_tokens``
    includes them and reports the cached share in ``prompt_tokens_details``.
    """
    cache_read = int(usage.get("cacheReadInputTokens") or 0)
    cache_write = int(usage.get("cacheWriteInputTokens") or 0)
    prompt = int(usage.get("inputTokens") or 0) + cache_read + cache_write
    completion = int(usage.get("outputTokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }


def _tool_call(block: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {
        "id": block.get("toolUseId", ""),
        "type": "function",
        "function": {
            "name": block.get("name", ""),
            "arguments": orjson.dumps(block.get("input", {})).decode(),
        },
    }
    if index is not None:
        call["index"] = index
    return call


def to_chat_completion(
    resp: ConverseResponse, *, model: str, id: str, created: int
) -> dict[str, Any]:
    text_parts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in resp.output.message.content:
        if block.text is not None:
            text_parts.append(block.text)
        elif block.toolUse is not None:
            tool_calls.append(_tool_call(block.toolUse))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text_parts) if text_parts or not tool_calls else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(resp.stopReason),
            }
        ],
        "usage": usage_to_openai(resp.usage.model_dump()),
    }


class ChunkTranslator:
    """ConverseStream events → OpenAI ``chat.completion.chunk`` objects, one stream at a time.

    Stateful only in what OpenAI's format needs: the first chunk carries the role, tool calls are
    numbered in order of appearance, and usage goes in a final chunk with empty choices.
    """

    def __init__(self, *, model: str, id: str, created: int, include_usage: bool) -> None:
        self._base = {
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._tool_index: dict[int, int] = {}
        self._started = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk = {
            **self._base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def translate(self, event: StreamEvent) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self._started and (
            "messageStart" in event or "contentBlockDelta" in event or "contentBlockStart" in event
        ):
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if "contentBlockDelta" in event:
            body = event["contentBlockDelta"]
            delta = body["delta"]
            if "text" in delta:
                out.append(self._chunk({"content": delta["text"]}))
            elif "toolUse" in delta:
                index = self._tool_index.get(body.get("contentBlockIndex", 0), 0)
                out.append(
                    self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "function": {"arguments": delta["toolUse"].get("input", "")},
                                }
                            ]
                        }
                    )
                )
        elif "contentBlockStart" in event:
            start = event["contentBlockStart"]
            tool = start.get("start", {}).get("toolUse")
            if tool is not None:
                index = len(self._tool_index)
                self._tool_index[start.get("contentBlockIndex", 0)] = index
                out.append(
                    self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "id": tool.get("toolUseId", ""),
                                    "type": "function",
                                    "function": {"name": tool.get("name", ""), "arguments": ""},
                                }
                            ]
                        }
                    )
                )
        elif "messageStop" in event:
            out.append(self._chunk({}, finish_reason(event["messageStop"].get("stopReason"))))
        elif "metadata" in event and self._include_usage:
            usage = event["metadata"].get("usage") or {}
            out.append({**self._base, "choices": [], "usage": usage_to_openai(usage)})
        return out
