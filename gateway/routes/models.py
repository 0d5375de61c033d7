"""``GET /v1/models`` and ``GET /v1/models/{id}``: what the caller may name as ``model``.

Aliases first, then every registered variant as ``variant:<name>``, as far as the caller's key
may reach them; a target string
(``bedrock:…``, ``local:…``) is retrievable too, since requests may name one directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.auth import Principal
from gateway.errors import InvalidRequest, NotFound
from gateway.http import json_response, principal
from gateway.routes.calls import Exchange, endpoint
from gateway.state import GatewayState, get_state
from gateway.targets import looks_like_target, parse_target


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "strata"}


async def _names(state: GatewayState, caller: Principal) -> list[str]:
    """What ``caller`` may name: a key scoped to some aliases sees only those, and variants
    only when its ``allow_targets`` reach them (admin keys see everything)."""
    variants = await asyncio.to_thread(state.variants.names) if state.variants else []
    aliases = [a for a in state.pipeline.route.aliases if caller.may_use(a, True)]
    targets = [f"variant:{v}" for v in variants]
    return [*aliases, *(t for t in targets if caller.may_use(t, False))]


async def list_models(request: Request, exchange: Exchange) -> Response:
    state = get_state(request)
    caller = principal(request, state)
    data = [_model(n) for n in await _names(state, caller)]
    return json_response({"object": "list", "data": data}, headers=exchange.headers())


async def retrieve_model(request: Request, exchange: Exchange) -> Response:
    state = get_state(request)
    caller = principal(request, state)
    model_id: str = request.path_params["model_id"]
    if model_id in await _names(state, caller):
        return json_response(_model(model_id), headers=exchange.headers())
    if looks_like_target(model_id) and not model_id.startswith("variant:"):
        try:
            parse_target(model_id)
        except InvalidRequest:
            pass
        else:
            return json_response(_model(model_id), headers=exchange.headers())
    raise NotFound(f"The model {model_id!r} does not exist", param="model")


routes = [
    Route("/v1/models", endpoint("openai", list_models), methods=["GET"]),
    Route("/v1/models/{model_id:path}", endpoint("openai", retrieve_model), methods=["GET"]),
]
