"""Canonical Converse request ⇄ the local engine's generation contract (pure)."""

from __future__ import annotations

from adapters_local.serving.generation import ChatMessage, Finished, GenerationRequest
from gateway.canonical import ConverseRequest, StreamEvent, UsageDict
from gateway.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 256


def to_generation(request: ConverseRequest, adapter: str | None) -> GenerationRequest:
    messages: list[ChatMessage] = []
    system = request.system_text()
    if system:
        messages.append(ChatMessage("system", system))
    for i, message in enumerate(request.messages):
        parts = []
        for j, block in enumerate(message.content):
            if block.text is None:
                raise InvalidRequest(
                    f"messages.{i}.content.{j}: local models take text content only",
                    param=f"messages.{i}.content.{j}",
                )
            parts.append(block.text)
        messages.append(ChatMessage(message.role, "".join(parts)))
    config = request.inferenceConfig
    return GenerationRequest(
        messages=tuple(messages),
        max_new_tokens=(config.maxTokens if config and config.maxTokens else DEFAULT_MAX_TOKENS),
        temperature=config.temperature if config else None,
        top_p=config.topP if config else None,
        stop=tuple(config.stopSequences or ()) if config else (),
        adapter=adapter,
    )


def usage(finished: Finished) -> UsageDict:
    return {
        "inputTokens": finished.input_tokens,
        "outputTokens": finished.output_tokens,
        "totalTokens": finished.input_tokens + finished.output_tokens,
    }


def start_events() -> list[StreamEvent]:
    return [{"messageStart": {"role": "assistant"}}]


def delta_event(text: str) -> StreamEvent:
    return {"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": 0}}


def end_events(finished: Finished, latency_ms: int) -> list[StreamEvent]:
    return [
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": finished.stop_reason}},
        {"metadata": {"usage": dict(usage(finished)), "metrics": {"latencyMs": latency_ms}}},
    ]
