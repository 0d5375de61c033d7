"""botocore exceptions → the gateway's error tree (the only place that knows botocore's).

Each error is marked ``retryable`` as botocore's "standard" retry mode would retry it
(throttling and modeled-retryable codes, 500/502/503/504, connection errors, read timeouts), and
carries the upstream's Retry-After; the pipeline's retry policy acts on both.
"""

from __future__ import annotations

import email.utils
import math
import time

from botocore.exceptions import (
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from gateway.errors import (
    StrataError,
    UpstreamDenied,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)

# Bedrock's own error codes, kept as they are on the Bedrock surface so a boto3 caller behind the
# gateway gets the same exception class it would get from Bedrock.
BY_CODE: dict[str, type[UpstreamError]] = {
    "ThrottlingException": UpstreamThrottled,
    "ModelNotReadyException": UpstreamThrottled,
    "ServiceQuotaExceededException": UpstreamThrottled,
    "ServiceUnavailableException": UpstreamUnavailable,
    "InternalServerException": UpstreamError,
    "ModelErrorException": UpstreamError,
    "ModelStreamErrorException": UpstreamError,
    "ModelTimeoutException": UpstreamTimeout,
    "ValidationException": UpstreamRejected,
    "AccessDeniedException": UpstreamDenied,
    "ResourceNotFoundException": UpstreamNotFound,
}

# Messages that come back to clients for 5xx: fixed text, never the upstream's own words.
PUBLIC_MESSAGE: dict[type[UpstreamError], str] = {
    UpstreamThrottled: "the model provider is throttling requests; retry later",
    UpstreamUnavailable: "the model provider is unavailable; retry later",
    UpstreamTimeout: "the model provider timed out",
    UpstreamDenied: "the gateway is not allowed to call this model upstream",
    UpstreamError: "the model provider failed to answer",
}


def translate(exc: BaseException) -> StrataError:
    if isinstance(exc, ClientError):
        return _from_client_error(exc)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return UpstreamDenied("the gateway has no AWS credentials for the bedrock provider")
    if isinstance(exc, ReadTimeoutError):
        return read_timeout()
    if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError, ConnectionError)):
        return UpstreamUnavailable(CANNOT_REACH)
    error = UpstreamError(FAILED)
    # A connection dropped mid-answer (ConnectionClosedError, ...): botocore retries these.
    error.retryable = isinstance(exc, HTTPClientError)
    return error


CANNOT_REACH = "cannot reach the model provider"
FAILED = PUBLIC_MESSAGE[UpstreamError]
RETRY_CODES = frozenset(
    {
        "ThrottlingException",
        "ModelNotReadyException",
        "ServiceUnavailableException",
        "InternalServerException",
    }
)
RETRY_STATUSES = frozenset({500, 502, 503, 504})


def read_timeout() -> UpstreamTimeout:
    error = UpstreamTimeout(PUBLIC_MESSAGE[UpstreamTimeout])
    error.retryable = True  # our read timed out; unlike a ModelTimeoutException, worth a retry
    return error


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 10.2.3); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def from_code(
    code: str, message: str, retry_after: str | None = None, *, status: int | None = None
) -> UpstreamError:
    """A Bedrock error code and message → our tree; both transports map errors through this."""
    # In-stream exceptions arrive named by their event member (``throttlingException``).
    code = code[:1].upper() + code[1:]
    cls = BY_CODE.get(code, UpstreamError)
    if cls in (UpstreamRejected, UpstreamNotFound):
        # Those describe the caller's own request, so the upstream's words help them.
        error: UpstreamError = cls(message or code)
    else:
        error = cls(PUBLIC_MESSAGE.get(cls, FAILED))
    if code in BY_CODE:
        error.bedrock_code = code
    error.retryable = code in RETRY_CODES or status in RETRY_STATUSES
    error.retry_after_s = parse_retry_after(retry_after)
    if isinstance(error, UpstreamThrottled) and error.retry_after_s is not None:
        error.retry_after = error.retry_after_s
    return error


def _from_client_error(exc: ClientError) -> StrataError:
    error = exc.response.get("Error", {})
    metadata = exc.response.get("ResponseMetadata", {})
    headers = metadata.get("HTTPHeaders", {})
    return from_code(
        str(error.get("Code", "")),
        str(error.get("Message") or ""),
        headers.get("retry-after"),
        status=metadata.get("HTTPStatusCode"),
    )
