"""Bedrock-native wire shapes: request bodies in, responses and event-stream frames out (pure)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.errors import InvalidRequest, StrataError
from gateway.wire.eventstream import encode_event, encode_exception
from gateway.wire.parse import validate

_BLOB_BLOCKS = ("image", "document", "video")

# ConverseStream's in-stream exception members; anything else is sent as an internal error.
_STREAM_EXCEPTIONS = {
    "InternalServerException": "internalServerException",
    "ModelStreamErrorException": "modelStreamErrorException",
    "ValidationException": "validationException",
    "ThrottlingException": "throttlingException",
    "ServiceUnavailableException": "serviceUnavailableException",
}


def parse_converse(data: dict[str, Any]) -> ConverseRequest:
    data.pop("modelId", None)  # travels in the path; a body copy must not override it
    request = validate(ConverseRequest, data)
    for i, message in enumerate(request.messages):
        for j, block in enumerate(message.content):
            _decode_blobs(block.model_extra or {}, f"messages.{i}.content.{j}")
    return request


def _decode_blobs(extra: dict[str, Any], where: str) -> None:
    # On the wire, blob members are base64 text; botocore wants bytes and encodes them itself.
    for kind in _BLOB_BLOCKS:
        block = extra.get(kind)
        source = block.get("source") if isinstance(block, dict) else None
        if isinstance(source, dict) and isinstance(source.get("bytes"), str):
            try:
                source["bytes"] = base64.b64decode(source["bytes"], validate=True)
            except binascii.Error:
                raise InvalidRequest(
                    f"{where}.{kind}.source.bytes: not valid base64",
                    param=f"{where}.{kind}.source.bytes",
                ) from None


def dump_response(response: ConverseResponse) -> bytes:
    return orjson.dumps(response.model_dump(exclude_none=True))


def frame_event(event: StreamEvent) -> bytes:
    ((name, payload),) = event.items()
    return encode_event(name, orjson.dumps(payload))


def frame_error(exc: StrataError) -> bytes:
    member = _STREAM_EXCEPTIONS.get(exc.bedrock_code, "internalServerException")
    return encode_exception(member, exc.message)
