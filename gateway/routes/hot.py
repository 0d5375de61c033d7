"""The hot routes (``POST /v1/chat/completions``, ``/model/{id}/converse[-stream]``) answered
before FastAPI's middleware stack and router.

``StrataApp`` is FastAPI with one step in front: a request for one of those routes (matched
with the same ``Route`` objects the router holds) is answered by the same endpoint, a
``StrataError`` by the same handler the exception middleware would call, and anything else
that escapes by the same ``CatchAll``. Every other request, including another method on those
paths (405, ``OPTIONS``), goes through FastAPI as before. The layers skipped (Starlette's error
and exception middleware, FastAPI's telemetry, body-limit and exit-stack middleware, the
router, the route wrapper) cost about 0.05 ms per request: ``bench/README.md``, "The request
path's own CPU".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from gateway.errors import StrataError
from gateway.handlers import CatchAll, strata_error


class StrataApp(FastAPI):
    def __init__(self, *, hot: Sequence[Route], **options: Any) -> None:
        super().__init__(**options)
        self._hot = tuple(hot)
        self._serve_hot = CatchAll(_serve)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self._hot:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)  # endpoint and path_params, as the router sets them
                    scope["app"] = self
                    await self._serve_hot(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive, send)
    try:
        response = await scope["endpoint"](request)
    except StrataError as exc:
        response = await strata_error(request, exc)
        exc.__traceback__ = None  # as Starlette does: no frames kept alive by the error
    await response(scope, receive, send)
