"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from gateway.http import json_response
from gateway.state import get_state

router = APIRouter()


@router.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    providers = get_state(request).ready()
    ready = all(providers.values())
    return json_response(
        {"status": "ready" if ready else "starting", "providers": providers}, 200 if ready else 503
    )
