"""What both surfaces do around the pipeline: request ids, caller hints and response headers
(the streaming response is ``routes/streaming.py``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import InvalidRequest, StrataError
from gateway.logs import code_location
from gateway.pipeline.call import Call, Hints, Surface, new_request_id

log = logging.getLogger("strata.surface")

TIMEOUT_HEADER = "x-strata-timeout-ms"
_MAX_TIMEOUT_MS = 3_600_000


@dataclass
class Exchange:
    """One HTTP request's id and, once the surface has built it, its Call."""

    request_id: str
    surface: Surface
    call: Call | None = None

    def headers(self) -> dict[str, str]:
        headers = {"x-strata-request-id": self.request_id}
        if self.surface == "bedrock":
            # What boto3 reads into ResponseMetadata.RequestId.
            headers["x-amzn-RequestId"] = self.request_id
        if self.call is not None:
            outcome = self.call.outcome
            if outcome.target is not None:
                headers["x-strata-target"] = str(outcome.target)
            if outcome.variant is not None:
                headers["x-strata-variant"] = outcome.variant
            headers["x-strata-attempts"] = str(outcome.attempts)
            if outcome.cache is not None:
                headers["x-strata-cache"] = outcome.cache
                similarity = self.call.context.get("cache_similarity")
                if similarity is not None:
                    headers["x-strata-cache-similarity"] = f"{similarity:.4f}"
            headers["x-strata-overhead-ms"] = f"{outcome.overhead_ms(self.call.started):.2f}"
        return headers


Endpoint = Callable[[Request, Exchange], Awaitable[Response]]


def endpoint(surface: Surface, handler: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Give ``handler`` a request id; errors leave with it (and the outcome's headers) too."""

    async def run(request: Request) -> Response:
        exchange = Exchange(new_request_id(), surface)
        try:
            return await handler(request, exchange)
        except StrataError as exc:
            exc.response_headers.update(exchange.headers())
            raise
        except Exception as exc:
            # Type and code location only: a message or traceback can quote request data.
            log.error(
                "unhandled %s in request %s at %s",
                type(exc).__name__,
                exchange.request_id,
                code_location(exc),
            )
            error = StrataError("internal error")
            error.response_headers.update(exchange.headers())
            raise error from None

    return run


_HINT_HEADERS = frozenset(
    {
        TIMEOUT_HEADER.encode(),
        b"x-strata-user",
        b"x-strata-cache",
        b"cache-control",
        b"traceparent",
        b"tracestate",
        b"x-strata-arm",
    }
)


def hints(request: Request, user: str | None = None) -> Hints:
    """``x-strata-user`` (else the OpenAI ``user`` field), ``x-strata-timeout-ms``,
    ``x-strata-cache`` / ``Cache-Control``, ``traceparent`` / ``tracestate``, ``x-strata-arm``
    (admin keys: the experiment arm to use)."""
    # One pass over the raw headers (names are lower-case in ASGI) instead of a scan of the
    # whole list per header asked for: this ran a dozen scans per request.
    found: dict[bytes, list[str]] = {}
    for name, value in request.scope["headers"]:
        if name in _HINT_HEADERS:
            found.setdefault(name, []).append(value.decode("latin-1"))

    def first(name: bytes) -> str | None:
        values = found.get(name)
        return values[0] if values else None

    raw = first(TIMEOUT_HEADER.encode())
    timeout_ms = None
    if raw is not None:
        if not raw.strip().isdigit() or not 1 <= int(raw) <= _MAX_TIMEOUT_MS:
            raise InvalidRequest(
                f"{TIMEOUT_HEADER}: must be a whole number of milliseconds from 1 to "
                f"{_MAX_TIMEOUT_MS}",
                param=TIMEOUT_HEADER,
            )
        timeout_ms = int(raw)
    return Hints(
        user=first(b"x-strata-user") or user,
        timeout_ms=timeout_ms,
        cache=_cache_directive(
            [*found.get(b"x-strata-cache", ()), *found.get(b"cache-control", ())]
        ),
        traceparent=first(b"traceparent"),
        tracestate=first(b"tracestate"),
        arm=first(b"x-strata-arm"),
    )


def _cache_directive(values: list[str]) -> str | None:
    """``no-store`` or ``no-cache`` from ``x-strata-cache`` or ``Cache-Control`` (no-store wins:
    it is the stricter one); other directives are ignored."""
    if not values:
        return None
    words: set[str] = set()
    for value in values:
        words.update(part.split("=", 1)[0].strip().lower() for part in value.split(","))
    for directive in ("no-store", "no-cache"):
        if directive in words:
            return directive
    return None


def caller_deadline(call: Call) -> None:
    if call.hints.timeout_ms is not None:
        call.deadline = call.started + call.hints.timeout_ms / 1000


def plain(content: bytes, headers: dict[str, str], media_type: str) -> Response:
    return Response(content, media_type=media_type, headers=headers)
