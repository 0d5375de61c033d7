"""botocore exceptions → the gateway's error tree (the only place that knows botocore's)."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    EndpointConnectionError,
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
        return UpstreamTimeout(PUBLIC_MESSAGE[UpstreamTimeout])
    if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError, ConnectionError)):
        return UpstreamUnavailable(CANNOT_REACH)
    if isinstance(exc, BotoCoreError):
        return UpstreamError(FAILED)
    return UpstreamError(FAILED)


CANNOT_REACH = "cannot reach the model provider"
FAILED = PUBLIC_MESSAGE[UpstreamError]


def from_code(code: str, message: str, retry_after: str | None = None) -> UpstreamError:
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
    if isinstance(error, UpstreamThrottled) and retry_after and retry_after.isdigit():
        error.retry_after = float(retry_after)
    return error


def _from_client_error(exc: ClientError) -> StrataError:
    error = exc.response.get("Error", {})
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return from_code(
        str(error.get("Code", "")), str(error.get("Message") or ""), headers.get("retry-after")
    )
