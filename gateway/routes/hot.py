"""The hot routes (``POST /v1/chat/completions``, ``/model/{id}/converse[-stream]``) without
FastAPI's inner layers: exception middleware, exit stack, router, route wrapper.

``HotRoutes`` sits just inside ``CatchAll`` and matches those routes itself, with the same
``Route`` objects the router holds; a match is answered by the same endpoint, and a
``StrataError`` by the same handler the exception middleware would call. Any other request,
including another method on those paths (405, ``OPTIONS``), goes on through FastAPI as before.
Those layers cost about 0.07 ms per request (``bench/README.md``, "The request path's own CPU").
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import StrataError
from gateway.handlers import strata_error


class HotRoutes:
    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self._routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self._routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    await self._serve(route, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except StrataError as exc:
            response = await strata_error(request, exc)
            exc.__traceback__ = None  # as Starlette does: no frames kept alive by the error
        await response(scope, receive, send)
