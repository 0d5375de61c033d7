"""The canonical request and response: Bedrock Converse's own shapes.

Every provider speaks these. Field names are Converse's camelCase so a Bedrock-native body
validates as is and a Bedrock response dumps back unchanged. Content blocks other than text
(image, document, toolUse, toolResult, ...) are kept as given: extra fields are allowed and
round-trip untouched.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

StopReason = Literal[
    "end_turn",
    "tool_use",
    "max_tokens",
    "stop_sequence",
    "guardrail_intervened",
    "content_filtered",
    "model_context_window_exceeded",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContentBlock(_Open):
    text: str | None = None
    toolUse: dict[str, Any] | None = None
    toolResult: dict[str, Any] | None = None


class Message(_Closed):
    role: Literal["user", "assistant"]
    content: list[ContentBlock] = Field(min_length=1)


class SystemBlock(_Open):
    text: str | None = None


class InferenceConfig(_Closed):
    # Strict: botocore refuses "3" for an integer. Temperature goes to 2 (OpenAI's range, which
    # local models take); the Bedrock surface checks Bedrock's own limits (wire/limits.py).
    model_config = ConfigDict(extra="forbid", strict=True)

    maxTokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    topP: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    stopSequences: list[str] | None = None


class ConverseRequest(_Open):
    """Body of Converse / ConverseStream (modelId travels in the path)."""

    messages: list[Message] = Field(min_length=1)
    system: list[SystemBlock] | None = None
    inferenceConfig: InferenceConfig | None = None
    toolConfig: dict[str, Any] | None = None
    additionalModelRequestFields: dict[str, Any] | None = None

    # OpenAI parameters Converse has no field for (seed, response_format...), as the caller sent
    # them: never serialised upstream; a provider honours each or refuses it, never ignores it.
    _options: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def options(self) -> dict[str, Any]:
        return self._options

    def system_text(self) -> str:
        return "\n".join(b.text for b in self.system or () if b.text)


class Usage(_Open):
    inputTokens: int = 0
    outputTokens: int = 0
    totalTokens: int = 0
    cacheReadInputTokens: int | None = None
    cacheWriteInputTokens: int | None = None


class Metrics(_Open):
    latencyMs: int = 0


class Output(_Open):
    message: Message


class ConverseResponse(_Open):
    output: Output
    stopReason: StopReason | str
    usage: Usage
    metrics: Metrics = Field(default_factory=Metrics)

    def text(self) -> str:
        return "".join(b.text or "" for b in self.output.message.content)


# Stream events stay plain dicts in ConverseStream's own shape: the bedrock provider passes
# aiobotocore's events through untouched and the Bedrock surface frames them as they are, so the
# hot path never rebuilds objects. Each event is a one-key dict; these types name the keys.


class _Delta(TypedDict, total=False):
    text: str
    toolUse: dict[str, Any]


class ContentBlockDeltaEvent(TypedDict):
    delta: _Delta
    contentBlockIndex: int


class StreamEvent(TypedDict, total=False):
    messageStart: dict[str, Any]
    contentBlockStart: dict[str, Any]
    contentBlockDelta: ContentBlockDeltaEvent
    contentBlockStop: dict[str, Any]
    messageStop: dict[str, Any]
    metadata: dict[str, Any]


class UsageDict(TypedDict):
    inputTokens: int
    outputTokens: int
    totalTokens: int
    cacheReadInputTokens: NotRequired[int]
    cacheWriteInputTokens: NotRequired[int]
