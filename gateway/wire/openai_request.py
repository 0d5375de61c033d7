"""OpenAI chat-completions request → canonical Converse request (pure)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gateway.canonical import ConverseRequest
from gateway.errors import InvalidRequest
from gateway.wire.limits import stop_sequences_limit
from gateway.wire.parse import validate

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


class _Lenient(BaseModel):
    # Unknown fields are accepted, as OpenAI-compatible servers do (SDKs send newer ones); the
    # fields we know are typed strictly, as OpenAI's own server types them ("3" is no integer).
    model_config = ConfigDict(extra="allow", strict=True)


class FunctionCall(_Lenient):
    name: str
    arguments: str = ""


class ToolCall(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionDef(_Lenient):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Lenient):
    type: Literal["function"] = "function"
    function: FunctionDef


class StreamOptions(_Lenient):
    include_usage: bool = False


class NamedFunction(_Lenient):
    name: str


class ToolChoiceFunction(_Lenient):
    type: Literal["function"] = "function"
    function: NamedFunction


class ChatCompletionRequest(_Lenient):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction | None = None
    # Parameters Converse has no field for: typed here, carried in ConverseRequest.options, and
    # honoured or refused by the provider (see the README's support matrix).
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2, allow_inf_nan=False)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2, allow_inf_nan=False)
    logit_bias: dict[str, float] | None = None
    reasoning_effort: str | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None


# Parameters with these values ask for nothing beyond plain generation, so every provider takes
# them; any other value reaches the provider in ConverseRequest.options.
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "logprobs": (False,),
    "top_logprobs": (0,),
    "frequency_penalty": (0, 0.0),
    "presence_penalty": (0, 0.0),
    "logit_bias": ({},),
}
_OPTIONS = (
    "seed",
    "response_format",
    "logprobs",
    "top_logprobs",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "reasoning_effort",
)


def parse_chat_request(data: dict[str, Any]) -> tuple[ChatCompletionRequest, ConverseRequest]:
    req = validate(ChatCompletionRequest, data)
    return req, to_converse(req)


def _options(req: ChatCompletionRequest) -> dict[str, Any]:
    if req.functions is not None or req.function_call is not None:
        raise InvalidRequest(
            "functions / function_call are deprecated and not supported; use tools",
            param="functions" if req.functions is not None else "function_call",
        )
    if req.response_format is not None and req.response_format.get("type") in (None, "text"):
        req.response_format = None  # plain text is what every provider produces anyway
    out: dict[str, Any] = {}
    for name in _OPTIONS:
        value = getattr(req, name)
        if value is not None and value not in _NEUTRAL.get(name, ()):
            out[name] = value
    return out


def to_converse(req: ChatCompletionRequest) -> ConverseRequest:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, msg in enumerate(req.messages):
        if msg.role in ("system", "developer"):
            system.extend({"text": t} for t in _texts(msg.content, i))
            continue
        role = "assistant" if msg.role == "assistant" else "user"
        blocks = _blocks(msg, i)
        if not blocks:
            raise InvalidRequest(f"messages.{i}: message has no content", param=f"messages.{i}")
        # Converse requires alternating roles; OpenAI allows runs (e.g. several tool results).
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequest("messages: needs at least one user message", param="messages")
    if turns[0]["role"] != "user":
        raise InvalidRequest(
            "messages: the first non-system message must be from the user", param="messages"
        )

    body: dict[str, Any] = {"messages": turns}
    if system:
        body["system"] = system
    inference = _inference(req)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(req, turns)
    if tool_config:
        body["toolConfig"] = tool_config
    canonical = validate(ConverseRequest, body)
    canonical.options.update(_options(req))
    return canonical


def _texts(content: str | list[dict[str, Any]] | None, i: int) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    out = []
    for j, part in enumerate(content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequest(
                f"messages.{i}.content.{j}: system content must be text parts",
                param=f"messages.{i}.content.{j}",
            )
        out.append(part["text"])
    return out


def _blocks(msg: ChatMessage, i: int) -> list[dict[str, Any]]:
    if msg.role == "tool":
        if not msg.tool_call_id:
            raise InvalidRequest(
                f"messages.{i}.tool_call_id: required for role 'tool'",
                param=f"messages.{i}.tool_call_id",
            )
        text = "".join(_texts(msg.content, i))
        return [{"toolResult": {"toolUseId": msg.tool_call_id, "content": [{"text": text}]}}]
    blocks: list[dict[str, Any]] = []
    if isinstance(msg.content, str):
        if msg.content:
            blocks.append({"text": msg.content})
    elif msg.content is not None:
        blocks.extend(_part(part, i, j) for j, part in enumerate(msg.content))
    for call in msg.tool_calls or ():
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call.id,
                    "name": call.function.name,
                    "input": _arguments(call.function.arguments, i),
                }
            }
        )
    return blocks


def _part(part: dict[str, Any], i: int, j: int) -> dict[str, Any]:
    kind = part.get("type")
    where = f"messages.{i}.content.{j}"
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise InvalidRequest(f"{where}.text: expected a string", param=f"{where}.text")
        return {"text": part["text"]}
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            raise InvalidRequest(
                f"{where}.image_url: expected {{'url': 'data:image/...;base64,...'}}",
                param=f"{where}.image_url",
            )
        return {"image": _image(image["url"], where)}
    shown = kind if isinstance(kind, str) and len(kind) <= 40 else type(kind).__name__
    raise InvalidRequest(f"{where}: unsupported content part type {shown!r}", param=where)


def _image(url: str, where: str) -> dict[str, Any]:
    # Bedrock takes image bytes, never URLs it would have to fetch.
    if not url.startswith("data:") or ";base64," not in url:
        raise InvalidRequest(
            f"{where}: only base64 data: URLs are supported for images", param=where
        )
    mime, _, data = url[5:].partition(";base64,")
    fmt = _IMAGE_FORMATS.get(mime)
    if fmt is None:
        raise InvalidRequest(f"{where}: unsupported image type {mime!r}", param=where)
    try:
        raw = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise InvalidRequest(f"{where}: image data is not valid base64", param=where) from None
    return {"format": fmt, "source": {"bytes": raw}}


def _arguments(arguments: str, i: int) -> Any:
    if not arguments:
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            f"messages.{i}.tool_calls: arguments are not valid JSON",
            param=f"messages.{i}.tool_calls",
        ) from None


def _inference(req: ChatCompletionRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    max_tokens = req.max_completion_tokens or req.max_tokens
    if max_tokens is not None:
        out["maxTokens"] = max_tokens
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["topP"] = req.top_p
    if req.stop:
        stops = [req.stop] if isinstance(req.stop, str) else list(req.stop)
        limit = stop_sequences_limit()
        if len(stops) > limit:
            raise InvalidRequest(f"stop: at most {limit} sequences", param="stop")
        if not all(stops):
            raise InvalidRequest("stop: sequences must not be empty", param="stop")
        out["stopSequences"] = stops
    return out


def _tool_config(req: ChatCompletionRequest, turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not req.tools:
        return None
    choice = req.tool_choice
    if choice == "none" and not _has_tool_blocks(turns):
        return None
    tools = [
        {
            "toolSpec": {
                "name": t.function.name,
                **({"description": t.function.description} if t.function.description else {}),
                "inputSchema": {
                    "json": t.function.parameters or {"type": "object", "properties": {}}
                },
            }
        }
        for t in req.tools
    ]
    config: dict[str, Any] = {"tools": tools}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, ToolChoiceFunction):
        config["toolChoice"] = {"tool": {"name": choice.function.name}}
    # "none" with tool blocks in the history: Converse has no "none" and refuses toolUse /
    # toolResult blocks without a toolConfig, so the specs stay and toolChoice is left out
    # (the model's default, auto). See the README's support matrix.
    return config


def _has_tool_blocks(turns: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for t in turns for b in t["content"])
