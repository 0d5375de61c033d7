"""The one exception handler: our error tree → an HTTP response shaped for the surface called."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import (
    InvalidRequest,
    NotFound,
    StrataError,
    UpstreamError,
)
from gateway.http import json_response

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
            "code": exc.bedrock_code if isinstance(exc, UpstreamError) else None,
        }
    }
    return json_response(body, exc.status, headers)


async def _strata(request: Request, exc: Exception) -> Response:
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
    if exc.status_code == 404:
        err: StrataError = NotFound(f"no route {request.method} {request.url.path}")
    else:
        err = StrataError(str(exc.detail))
        err.status = exc.status_code
    return error_response(request.url.path, err)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log; the client gets nothing it could learn internals from.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request.url.path, StrataError("internal error"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(StrataError, _strata)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
