"""The operators' dashboard: ``GET /dashboard`` (the page and its static files, no data in them)
and the JSON it reads, ``GET /admin/dashboard/summary`` and ``GET /admin/dashboard/series``.

The JSON routes take any key and scope it here, on the server: an admin key sees every tenant
(or the one named by ``?tenant=``), any other key only its own tenant, and naming another
tenant is refused. Breakers and experiments are gateway-wide, so only admin keys get them.
"""

from __future__ import annotations

import asyncio
import time
from functools import cache
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.accounting.service import Accounting
from gateway.accounting.usage import parse_time
from gateway.auth import Principal
from gateway.dashboard.series import check_bucket, series
from gateway.dashboard.views import served, summary
from gateway.errors import Forbidden, NotFound
from gateway.http import json_response
from gateway.routes.accounting import _accounting
from gateway.state import GatewayState, get_state

_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
# The page may reach only the gateway that served it: no CDN, no fonts, no beacons.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
DEFAULT_RANGE_S = 3600.0


@cache
def _asset(name: str) -> bytes | None:
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in _TYPES or "/" in name or name.startswith("."):
        return None
    path = resources.files("gateway.dashboard") / "static" / name
    return path.read_bytes() if path.is_file() else None


def _serve(name: str) -> Response:
    body = _asset(name)
    if body is None:
        raise NotFound(f"no dashboard file {name!r}")
    media = _TYPES[name[name.rfind(".") :]]
    return Response(body, media_type=media, headers=_HEADERS)


async def page(request: Request) -> Response:
    return _serve("index.html")


async def asset(request: Request) -> Response:
    return _serve(request.path_params["name"])


def _scope(request: Request) -> tuple[Accounting, Principal, str | None]:
    accounting, who = _accounting(request)
    asked = request.query_params.get("tenant") or None
    if who.admin:
        return accounting, who, asked
    if asked is not None and asked != who.tenant:
        raise Forbidden("a key may read only its own tenant's usage", param="tenant")
    return accounting, who, who.tenant


def _range(request: Request) -> tuple[float, float]:
    q = request.query_params
    until = parse_time(q.get("until"), "until") or time.time()
    since = parse_time(q.get("since"), "since")
    return (until - DEFAULT_RANGE_S if since is None else since), until


def _experiments(state: GatewayState, counts: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    route = state.pipeline.route
    out = []
    for alias in route.aliases:
        experiment = route.experiment(alias)
        if experiment is None:
            continue
        weights = experiment.weights
        whole = sum(weights.values()) or 1.0
        out.append(
            {
                "alias": alias,
                "sticky_by": experiment.sticky_by,
                "variants": [
                    {
                        "name": name,
                        "weight": weight,
                        "share": round(weight / whole, 6),
                        "served": counts.get((alias, name), 0),
                    }
                    for name, weight in weights.items()
                ],
            }
        )
    return out


async def summary_view(request: Request) -> Response:
    accounting, who, tenant = _scope(request)
    since, until = _range(request)
    body = await asyncio.to_thread(summary, accounting.db, since=since, until=until, tenant=tenant)
    body["scope"] = {"tenant": tenant, "admin": who.admin, "key_tenant": who.tenant}
    body["range"] = {"since": since, "until": until}
    if who.admin:
        state = get_state(request)
        counts = await asyncio.to_thread(
            served, accounting.db, since=since, until=until, tenant=tenant
        )
        body["experiments"] = _experiments(state, counts)
        breakers = (
            state.observability.breakers
            if state.observability is not None
            else state.pipeline.attempt.breakers.states
        )
        body["breakers"] = [{"target": target, "state": s} for target, s in breakers()]
    return json_response(body)


async def series_view(request: Request) -> Response:
    accounting, _, tenant = _scope(request)
    since, until = _range(request)
    bucket = check_bucket(request.query_params.get("bucket", "minute"))
    points = await asyncio.to_thread(
        series, accounting.db, bucket, since=since, until=until, tenant=tenant
    )
    return json_response(
        {"bucket": bucket, "tenant": tenant, "data": [p.as_json() for p in points]}
    )


routes = [
    Route("/dashboard", page, methods=["GET"]),
    Route("/dashboard/{name}", asset, methods=["GET"]),
    Route("/admin/dashboard/summary", summary_view, methods=["GET"]),
    Route("/admin/dashboard/series", series_view, methods=["GET"]),
]
