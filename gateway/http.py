"""Request plumbing shared by both API surfaces: auth, bounded body reads, JSON responses."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Principal, authenticate
from gateway.errors import InvalidRequest, PayloadTooLarge, RequestTimeout
from gateway.state import GatewayState


def principal(request: Request, state: GatewayState) -> Principal:
    return authenticate(state.keys, request.headers.get("authorization"))


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes, and with
    408 when the client takes longer than ``STRATA_BODY_TIMEOUT_S`` to send it."""
    state: GatewayState | None = getattr(request.app.state, "strata", None)
    timeout = state.settings.body_timeout_s if state is not None else None
    try:
        async with asyncio.timeout(timeout):
            return await _read_body(request, limit)
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout:g}s") from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("invalid Content-Length header")
        if int(declared) > limit:
            raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, headers=headers, media_type="application/json"
    )
