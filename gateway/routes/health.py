"""Liveness and readiness."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http import json_response
from gateway.state import get_state


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    providers = get_state(request).ready()
    ready = all(providers.values())
    return json_response(
        {"status": "ready" if ready else "starting", "providers": providers}, 200 if ready else 503
    )


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
