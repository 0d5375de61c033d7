"""OpenAI-compatible surface: ``/v1/chat/completions`` (``/v1/models``: ``routes/models.py``).

The surface only translates: auth → bounded body → canonical request → ``Call`` → pipeline →
OpenAI JSON or SSE.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.canonical import StreamEvent
from gateway.errors import StrataError, UpstreamError
from gateway.http import json_response, principal, read_body
from gateway.pipeline.call import Call
from gateway.routes.calls import Exchange, caller_deadline, endpoint, hints
from gateway.routes.streaming import ClosingStream
from gateway.state import get_state
from gateway.wire.openai_request import parse_chat_request
from gateway.wire.openai_response import ChunkTranslator, to_chat_completion
from gateway.wire.parse import load_json

log = logging.getLogger("strata.openai")

_DONE = b"data: [DONE]\n\n"


def _sse(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


async def chat_completions(request: Request, exchange: Exchange) -> Response:
    state = get_state(request)
    who = principal(request, state)
    body = await read_body(request, state.settings.max_body_bytes)
    chat, canonical = parse_chat_request(load_json(body))
    user = (chat.model_extra or {}).get("user")
    call = Call(
        exchange.request_id,
        who,
        "openai",
        chat.model,
        canonical,
        stream=bool(chat.stream),
        hints=hints(request, user if isinstance(user, str) else None),
    )
    caller_deadline(call)
    exchange.call = call
    # 32 random hex digits, as uuid4().hex gave, without building a UUID per request.
    completion_id = f"chatcmpl-{os.urandom(16).hex()}"
    created = int(time.time())
    if not chat.stream:
        response = await state.pipeline.converse(call)
        return json_response(
            to_chat_completion(response, model=chat.model, id=completion_id, created=created),
            headers=exchange.headers(),
        )
    events = await state.pipeline.converse_stream(call)
    translator = ChunkTranslator(
        model=chat.model,
        id=completion_id,
        created=created,
        include_usage=bool(chat.stream_options and chat.stream_options.include_usage),
    )
    return ClosingStream(
        _chunks(events, translator),
        on_close=events.aclose,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", **exchange.headers()},
    )


async def _chunks(
    events: AsyncIterator[StreamEvent], translator: ChunkTranslator
) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            for chunk in translator.translate(event):
                yield _sse(chunk)
    except StrataError as exc:
        # Headers are gone already; OpenAI clients raise on an in-stream error object. The
        # stream then ends without [DONE], so no client mistakes it for a complete answer.
        log.warning("stream failed after the first byte: %s", type(exc).__name__)
        yield _sse(
            {
                "error": {
                    "message": exc.message,
                    "type": exc.openai_type,
                    "code": exc.bedrock_code if isinstance(exc, UpstreamError) else None,
                }
            }
        )
        return
    yield _DONE


routes = [
    Route("/v1/chat/completions", endpoint("openai", chat_completions), methods=["POST"]),
]
