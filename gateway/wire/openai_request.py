"""OpenAI chat-completions request → canonical Converse request (pure)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gateway.canonical import ConverseRequest
from gateway.errors import InvalidRequest
from gateway.wire.cache_points import marked_blocks
from gateway.wire.parse import validate

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


class _Lenient(BaseModel):
    # Unknown OpenAI fields (user, seed, logprobs...) are accepted and ignored, as OpenAI-compatible
    # servers do; the fields we act on are typed strictly.
    model_config = ConfigDict(extra="allow")


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


class ChatCompletionRequest(_Lenient):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None


def parse_chat_request(data: dict[str, Any]) -> tuple[ChatCompletionRequest, ConverseRequest]:
    req = validate(ChatCompletionRequest, data)
    return req, to_converse(req)


def to_converse(req: ChatCompletionRequest) -> ConverseRequest:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, msg in enumerate(req.messages):
        if msg.role in ("system", "developer"):
            texts = [{"text": t} for t in _texts(msg.content, i)]
            sources = msg.content if isinstance(msg.content, list) else [None] * len(texts)
            system.extend(marked_blocks(zip(sources, texts, strict=True), f"messages.{i}.content"))
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
    tool_config = _tool_config(req)
    if tool_config:
        body["toolConfig"] = tool_config
    return ConverseRequest.model_validate(body)


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
        translated = [(part, _part(part, i, j)) for j, part in enumerate(msg.content)]
        blocks.extend(marked_blocks(translated, f"messages.{i}.content"))
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
    if kind == "text" and isinstance(part.get("text"), str):
        return {"text": part["text"]}
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        return {"image": _image(url, where)}
    raise InvalidRequest(f"{where}: unsupported content part type {kind!r}", param=where)


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
        out["stopSequences"] = [req.stop] if isinstance(req.stop, str) else list(req.stop)
    return out


def _tool_config(req: ChatCompletionRequest) -> dict[str, Any] | None:
    if not req.tools or req.tool_choice == "none":
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
    extras = [t.model_extra or {} for t in req.tools]
    tools = marked_blocks(zip(extras, tools, strict=True), "tools")
    config: dict[str, Any] = {"tools": tools}
    choice = req.tool_choice
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if not isinstance(name, str):
            raise InvalidRequest(
                "tool_choice: expected {'type': 'function', 'function': {'name': ...}}",
                param="tool_choice",
            )
        config["toolChoice"] = {"tool": {"name": name}}
    elif choice is not None:
        raise InvalidRequest(f"tool_choice: unsupported value {choice!r}", param="tool_choice")
    return config
