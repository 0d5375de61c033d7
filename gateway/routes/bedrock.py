"""Bedrock-native surface: ``/model/{modelId}/converse`` and ``/converse-stream``.

An unmodified boto3 ``bedrock-runtime`` client pointed here (``endpoint_url``) with
``AWS_BEARER_TOKEN_BEDROCK`` set to a Strata key works: same paths, bodies, event-stream framing
and error codes as Bedrock. ``modelId`` is a Strata alias or target. The surface only
translates: auth → bounded body → canonical request → ``Call`` → pipeline → Converse wire.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.canonical import StreamEvent
from gateway.errors import StrataError
from gateway.http import principal, read_body
from gateway.pipeline.call import Call
from gateway.routes.calls import Exchange, caller_deadline, endpoint, hints, plain
from gateway.routes.streaming import ClosingStream
from gateway.state import get_state
from gateway.wire.bedrock import dump_response, frame_error, frame_event, parse_converse
from gateway.wire.parse import load_json

log = logging.getLogger("strata.bedrock_api")

EVENT_STREAM = "application/vnd.amazon.eventstream"


async def _call(request: Request, exchange: Exchange, *, stream: bool) -> Call:
    state = get_state(request)
    who = principal(request, state)
    body = await read_body(request, state.settings.max_body_bytes)
    canonical = parse_converse(load_json(body))
    call = Call(
        exchange.request_id,
        who,
        "bedrock",
        request.path_params["model_id"],
        canonical,
        stream=stream,
        hints=hints(request),
    )
    caller_deadline(call)
    exchange.call = call
    return call


async def converse(request: Request, exchange: Exchange) -> Response:
    call = await _call(request, exchange, stream=False)
    response = await get_state(request).pipeline.converse(call)
    return plain(dump_response(response), exchange.headers(), "application/json")


async def converse_stream(request: Request, exchange: Exchange) -> Response:
    call = await _call(request, exchange, stream=True)
    events = await get_state(request).pipeline.converse_stream(call)
    return ClosingStream(
        _frames(events), on_close=events.aclose, media_type=EVENT_STREAM, headers=exchange.headers()
    )


async def _frames(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield frame_event(event)
    except StrataError as exc:
        log.warning("stream failed after the first byte: %s", type(exc).__name__)
        yield frame_error(exc)


# Plain Starlette routes: FastAPI's per-request dependency solving cost ~0.1 ms we don't need.
routes = [
    Route("/model/{model_id:path}/converse", endpoint("bedrock", converse), methods=["POST"]),
    Route(
        "/model/{model_id:path}/converse-stream",
        endpoint("bedrock", converse_stream),
        methods=["POST"],
    ),
]
