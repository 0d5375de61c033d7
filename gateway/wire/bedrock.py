"""Bedrock-native wire shapes: request bodies in, responses and event-stream frames out (pure)."""

from __future__ import annotations

import binascii
from typing import Any

from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.errors import InvalidRequest, StrataError
from gateway.wire.blobs import decode_body, dumps_wire, runtime_shapes
from gateway.wire.eventstream import encode_event, encode_exception
from gateway.wire.limits import check_converse
from gateway.wire.parse import validate

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
    try:
        # On the wire, blobs are base64 text; canonical objects hold bytes, as botocore does.
        data = decode_body(data, runtime_shapes().request_blobs)
    except (binascii.Error, ValueError):
        raise InvalidRequest("a binary field (image, document, ...) is not valid base64") from None
    check_converse(data)  # Bedrock's own limits and rules, as botocore's model states them
    return validate(ConverseRequest, data)


def dump_response(response: ConverseResponse) -> bytes:
    return dumps_wire(response.model_dump(exclude_none=True))


def frame_event(event: StreamEvent) -> bytes:
    ((name, payload),) = event.items()
    return encode_event(name, dumps_wire(payload))


def frame_error(exc: StrataError) -> bytes:
    member = _STREAM_EXCEPTIONS.get(exc.bedrock_code, "internalServerException")
    return encode_exception(member, exc.message)
