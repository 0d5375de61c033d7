"""``GET /admin/cache`` (counters) and ``POST /admin/cache/flush[?tenant=T]`` — admin keys only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.cache.stage import CacheStage
from gateway.errors import Forbidden, InvalidRequest, UpstreamUnavailable
from gateway.http import json_response, principal
from gateway.state import get_state


def _cache(request: Request) -> CacheStage:
    state = get_state(request)
    if not principal(request, state).admin:
        raise Forbidden("this route needs an admin key")
    if state.pipeline.cache is None:
        raise UpstreamUnavailable("the response cache is not enabled on this gateway")
    return state.pipeline.cache


async def stats(request: Request) -> Response:
    return json_response(_cache(request).stats())


async def flush(request: Request) -> Response:
    cache = _cache(request)
    tenant = request.query_params.get("tenant")
    if tenant is not None and not tenant:
        raise InvalidRequest("tenant: must not be empty", param="tenant")
    flushed = await cache.flush(tenant)
    return json_response({"flushed": flushed, "tenant": tenant, "backend": cache.backend.name})


routes = [
    Route("/admin/cache", stats, methods=["GET"]),
    Route("/admin/cache/flush", flush, methods=["POST"]),
]
