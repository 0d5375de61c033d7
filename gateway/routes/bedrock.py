"""Bedrock-native surface: ``/model/{modelId}/converse`` and ``/converse-stream``.

An unmodified boto3 ``bedrock-runtime`` client pointed here (``endpoint_url``) with
``AWS_BEARER_TOKEN_BEDROCK`` set to a Strata key works: same paths, bodies, event-stream framing
and error codes as Bedrock. ``modelId`` is a Strata alias or target.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.canonical import StreamEvent
from gateway.errors import StrataError
from gateway.http import principal, read_body
from gateway.state import get_state
from gateway.wire.bedrock import dump_response, frame_error, frame_event, parse_converse
from gateway.wire.parse import load_json

log = logging.getLogger("strata.bedrock_api")

EVENT_STREAM = "application/vnd.amazon.eventstream"


async def converse(request: Request) -> Response:
    model_id: str = request.path_params["model_id"]
    state = get_state(request)
    principal(request, state)
    body = await read_body(request, state.settings.max_body_bytes)
    canonical = parse_converse(load_json(body))
    _, response = await state.router.converse(model_id, canonical)
    return Response(dump_response(response), media_type="application/json")


async def converse_stream(request: Request) -> Response:
    model_id: str = request.path_params["model_id"]
    state = get_state(request)
    principal(request, state)
    body = await read_body(request, state.settings.max_body_bytes)
    canonical = parse_converse(load_json(body))
    _, events = await state.router.converse_stream(model_id, canonical)
    return StreamingResponse(_frames(events), media_type=EVENT_STREAM)


async def _frames(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield frame_event(event)
    except StrataError as exc:
        log.warning("stream failed after the first byte: %s", type(exc).__name__)
        yield frame_error(exc)


# Plain Starlette routes: FastAPI's per-request dependency solving cost ~0.1 ms we don't need.
routes = [
    Route("/model/{model_id:path}/converse", converse, methods=["POST"]),
    Route("/model/{model_id:path}/converse-stream", converse_stream, methods=["POST"]),
]
