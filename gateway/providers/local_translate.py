"""Canonical Converse request ⇄ the local engine's generation contract (pure)."""

from __future__ import annotations

from typing import Any

from adapters_local.serving.generation import ChatMessage, Finished, GenerationRequest
from gateway.canonical import ConverseRequest, StreamEvent, UsageDict
from gateway.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 256
# Below this a softmax over logits / temperature overflows float32 (1e-40 gave inf/nan in
# torch.multinomial and failed the whole batch); such a temperature means "pick the top token".
GREEDY_BELOW = 1e-5

# Converse fields a local model cannot honour: refused, never ignored (a caller asking for a
# guardrail must not silently get none). The OpenAI name is given where the caller used it.
_CONVERSE_REFUSED = {
    "toolConfig": "tools",
    "guardrailConfig": None,
    "additionalModelRequestFields": None,
    "additionalModelResponseFieldPaths": None,
    "promptVariables": None,
}
# OpenAI options (ConverseRequest.options) a local model honours; every other one is refused.
_OPTIONS_HONOURED = frozenset({"seed"})


def to_generation(request: ConverseRequest, adapter: str | None) -> GenerationRequest:
    _refuse_unsupported(request)
    messages: list[ChatMessage] = []
    system = _system_text(request)
    if system:
        messages.append(ChatMessage("system", system))
    for i, message in enumerate(request.messages):
        parts = []
        for j, block in enumerate(message.content):
            if _is_cache_point(block.model_extra):
                continue  # a caching hint; nothing to honour or refuse
            if block.text is None:
                raise InvalidRequest(
                    f"messages.{i}.content.{j}: local models take text content only",
                    param=f"messages.{i}.content.{j}",
                )
            parts.append(block.text)
        messages.append(ChatMessage(message.role, "".join(parts)))
    config = request.inferenceConfig
    temperature = config.temperature if config else None
    top_p = config.topP if config else None
    if (temperature is not None and temperature < GREEDY_BELOW) or (
        top_p is not None and top_p < GREEDY_BELOW
    ):
        # A vanishing nucleus keeps only the top token too; greedy is the same answer, exactly.
        temperature, top_p = 0.0, None
    seed = request.options.get("seed")
    return GenerationRequest(
        messages=tuple(messages),
        max_new_tokens=(config.maxTokens if config and config.maxTokens else DEFAULT_MAX_TOKENS),
        temperature=temperature,
        top_p=top_p,
        stop=tuple(config.stopSequences or ()) if config else (),
        adapter=adapter,
        seed=seed if isinstance(seed, int) else None,
    )


def _refuse_unsupported(request: ConverseRequest) -> None:
    fields = request.model_fields_set | set(request.model_extra or {})
    for name, openai_name in _CONVERSE_REFUSED.items():
        if name in fields and getattr(request, name, None) is not None:
            shown = f"{openai_name} ({name})" if openai_name else name
            raise InvalidRequest(
                f"{shown}: not supported by local models", param=openai_name or name
            )
    for name in request.options:
        if name not in _OPTIONS_HONOURED:
            raise InvalidRequest(f"{name}: not supported by local models", param=name)


def _system_text(request: ConverseRequest) -> str:
    texts = []
    for k, block in enumerate(request.system or ()):
        if block.text is not None:
            texts.append(block.text)
        elif not _is_cache_point(block.model_extra):
            # guardContent and the like: a guardrail a local model cannot apply.
            raise InvalidRequest(
                f"system.{k}: local models take text system blocks only", param=f"system.{k}"
            )
    return "\n".join(t for t in texts if t)


def _is_cache_point(extra: dict[str, Any] | None) -> bool:
    return bool(extra) and set(extra or {}) == {"cachePoint"}


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
