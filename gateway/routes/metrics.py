"""``GET /metrics``: the Prometheus text exposition of the metrics core. Admin keys only, unless
``metrics.public: true`` in strata.yaml (a scraper on a private network)."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import UpstreamUnavailable
from gateway.routes.accounting import _admin as require_admin  # the one admin-key check
from gateway.state import get_state


async def metrics(request: Request) -> Response:
    state = get_state(request)
    obs = state.observability
    if obs is None:
        raise UpstreamUnavailable("metrics are not enabled on this gateway")
    if not obs.public_metrics:
        require_admin(request)
    # In a thread: with tenant labels a core holds thousands of series, and building their text
    # (and, with several workers, merging the others' figures) took 10-200 ms of event loop.
    body = await asyncio.to_thread(obs.prometheus.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
