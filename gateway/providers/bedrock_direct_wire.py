"""Pure parts of the direct Bedrock client: URLs, bodies, stream events, errors.

Everything botocore would otherwise do per call from its service model is decided here once:
which members are blobs (base64 on the wire, bytes in Python), which stream members are events
and which are exceptions. The rest follows botocore's rest-json rules, noted where they apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
from yarl import URL

from gateway.canonical import StreamEvent
from gateway.errors import UpstreamError, UpstreamUnavailable
from gateway.providers.bedrock_errors import CANNOT_REACH, FAILED, from_code, read_timeout
from gateway.wire.blobs import Shapes, decode_body
from gateway.wire.eventstream import Message


def endpoint_for(region: str, endpoint_url: str | None) -> str:
    """``endpoint_url`` if set, else the public regional endpoint botocore resolves to."""
    endpoint = endpoint_url or f"https://bedrock-runtime.{region}.amazonaws.com"
    # botocore joins an endpoint's path with the operation's, without doubling the slash.
    return endpoint.rstrip("/")


@lru_cache(maxsize=512)
def operation_url(endpoint: str, model_id: str, operation: str) -> tuple[str, URL]:
    """The URL text (what SigV4 signs) and the same URL for aiohttp, which must not re-encode it.

    botocore percent-encodes the ``{modelId}`` label with only ``-._~`` kept, so an ARN's ``:``
    and ``/`` travel as ``%3A`` and ``%2F``.
    """
    text = f"{endpoint}/model/{quote(model_id, safe='')}/{operation}"
    return text, URL(text, encoded=True)


def signing_host(endpoint: str) -> str:
    """The Host header botocore signs: lower-case, port only when not the scheme's default."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def reply_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    """An HTTP error reply → our error, marked retryable as botocore would retry it."""
    parsed: Any
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        # botocore keeps an unparseable body as the message.
        parsed = {"message": body.decode(errors="replace")}
    if not isinstance(parsed, dict):
        parsed = {}
    # botocore's rest-json order: the x-amzn-errortype header, then the body's code, __type.
    code = headers.get("x-amzn-errortype") or parsed.get("code") or parsed.get("Code")
    code = str(code or parsed.get("__type") or status)
    code = code.split(":", 1)[0].rsplit("#", 1)[-1]
    message = str(parsed.get("message", parsed.get("Message", "")))
    return from_code(code, message, headers.get("retry-after"), status=status)


def transport_error(exc: BaseException) -> UpstreamError:
    """aiohttp / socket failures → our tree, as aiobotocore's HTTP layer and ``translate`` do."""
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        error = UpstreamError(FAILED)
        error.retryable = True  # a connection error, as botocore's ConnectionClosedError
        return error
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamUnavailable(CANNOT_REACH)
    if isinstance(exc, TimeoutError):
        return read_timeout()
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return UpstreamUnavailable(CANNOT_REACH)
    return UpstreamError(FAILED)


def stream_event(message: Message, shapes: Shapes) -> StreamEvent | None:
    """One decoded frame → ``{event_type: payload}`` as aiobotocore yields it; ``None`` for a
    frame botocore's model does not know (aiobotocore skips those too); raises for exceptions."""
    headers = message.headers
    kind = message.message_type
    if kind in ("exception", "error"):
        name = message.exception_type
        if kind == "exception" and name in shapes.exceptions:
            raise from_code(name, _message_of(message.payload))
        code, text = headers.get(":error-code"), headers.get(":error-message")
        raise from_code(str(code or "400"), str(text or ""))
    event_type = message.event_type
    if event_type not in shapes.events:
        return None
    payload = orjson.loads(message.payload) if message.payload else {}
    tree = shapes.event_blobs.get(event_type)
    if tree is not None:
        payload = decode_body(payload, tree)
    return cast(StreamEvent, {event_type: payload})


def _message_of(payload: bytes) -> str:
    try:
        body = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        return payload.decode(errors="replace")
    if not isinstance(body, dict):
        return ""
    return str(body.get("Message", body.get("message", "")))
