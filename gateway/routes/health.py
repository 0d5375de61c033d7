"""Liveness and readiness.

``/readyz`` is unauthenticated, so it says what is ready and what is not, never why (paths and
loader errors are in the gateway's log).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http import json_response
from gateway.providers.local import LocalProvider
from gateway.state import get_state


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    drain = getattr(request.app.state, "drain", None)  # set by gateway.serving
    if drain is not None and drain.draining:
        # SIGTERM: a load balancer should stop sending here (gateway/drain.py).
        return json_response({"status": "draining"}, 503)
    state = get_state(request)
    ready = state.ready()
    providers: dict[str, object] = dict(ready)
    if "bedrock" in providers and ready["bedrock"]:
        if state.aws_credentials is False:
            providers["bedrock"] = "no credentials"
        elif state.aws_credentials is None:
            providers["bedrock"] = "checking credentials"
    body: dict[str, object] = {"status": "ready", "providers": providers}
    local = state.providers.get("local")
    targets = local.status() if isinstance(local, LocalProvider) else {}
    if targets:
        body["local"] = targets
    if not all(ready.values()):
        loading = any(v == "loading" for v in targets.values())
        body["status"] = "starting" if loading or not targets else "failed"
    if state.auth_disabled:
        body["auth"] = "DISABLED"
    return json_response(body, 200 if body["status"] == "ready" else 503)


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
