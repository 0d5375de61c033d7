"""The one exception handler: our error tree → an HTTP response shaped for the surface called.

Unexpected exceptions are caught by ``CatchAll`` (pure ASGI), not by an ``Exception`` handler:
Starlette re-raises after running such a handler, so uvicorn would log a second traceback (whose
message may quote request data) and close the keep-alive connection.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    StrataError,
    UpstreamUnavailable,
)
from gateway.http import json_response
from gateway.logs import code_location

log = logging.getLogger("strata.errors")

# botocore reads the code before the colon; Bedrock itself appends its namespace like this.
_BEDROCK_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


def is_bedrock_surface(path: str) -> bool:
    return path.startswith("/model/")


def error_response(path: str, exc: StrataError) -> Response:
    headers = {**exc.headers(), **exc.response_headers}
    if is_bedrock_surface(path):
        headers["x-amzn-ErrorType"] = exc.bedrock_code + _BEDROCK_NAMESPACE
        return json_response({"message": exc.message}, exc.status, headers)
    body = {
        "error": {
            "message": exc.message,
            "type": exc.openai_type,
            "param": exc.param,
            "code": exc.code(),
        }
    }
    return json_response(body, exc.status, headers)


async def strata_error(request: Request, exc: Exception) -> Response:
    """The response for one of our errors (also called by ``gateway.routes.hot``)."""
    assert isinstance(exc, StrataError)
    if exc.status >= 500:
        log.warning(
            "%s %s -> %d %s", request.method, request.url.path, exc.status, type(exc).__name__
        )
    return error_response(request.url.path, exc)


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    param = ".".join(str(p) for p in first.get("loc", ())) or None
    return error_response(request.url.path, InvalidRequest(f"{param}: {first['msg']}", param=param))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404:
        return error_response(path, NotFound(f"no route {request.method} {path}"))
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        if request.method == "OPTIONS":
            # OPTIONS asks which methods a resource takes; answer it rather than refuse it.
            return Response(status_code=204, headers={"Allow": ", ".join((allow, "OPTIONS"))})
        return error_response(
            path, MethodNotAllowed(f"{request.method} is not allowed on {path}", allow=allow)
        )
    err = InvalidRequest(str(exc.detail)) if exc.status_code < 500 else StrataError("error")
    err.status = exc.status_code
    return error_response(path, err)


class CatchAll:
    """Any exception our tree does not name becomes a 500 that keeps the connection usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.error(
                "unhandled %s on %s %s at %s",
                type(exc).__name__,
                scope.get("method"),
                scope.get("path"),
                code_location(exc),
            )
            if started:
                # Headers are gone; end the body cleanly rather than reset the connection.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            response = error_response(scope.get("path", ""), StrataError("internal error"))
            await response(scope, receive, send)


async def _store(request: Request, exc: Exception) -> Response:
    # The state store (keys, experiments, ledger reads) is down: retryable, and the driver's
    # message (host names, SQL) stays in the log.
    log.warning("%s %s -> 503 state store unreachable: %s", request.method, request.url.path, exc)
    return error_response(
        request.url.path, UpstreamUnavailable("the state store is unreachable now; retry later")
    )


def install(app: FastAPI) -> None:
    from gateway.accounting.store import StoreUnavailable

    app.add_exception_handler(StrataError, strata_error)
    app.add_exception_handler(StoreUnavailable, _store)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_middleware(CatchAll)
