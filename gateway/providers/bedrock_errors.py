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
_BY_CODE: dict[str, type[UpstreamError]] = {
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
_PUBLIC_MESSAGE: dict[type[UpstreamError], str] = {
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
        return UpstreamTimeout(_PUBLIC_MESSAGE[UpstreamTimeout])
    if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError, ConnectionError)):
        return UpstreamUnavailable("cannot reach the model provider")
    if isinstance(exc, BotoCoreError):
        return UpstreamError(_PUBLIC_MESSAGE[UpstreamError])
    return UpstreamError(_PUBLIC_MESSAGE[UpstreamError])


def _from_client_error(exc: ClientError) -> StrataError:
    error = exc.response.get("Error", {})
    raw_code = str(error.get("Code", ""))
    # In-stream exceptions arrive named by their event member (``throttlingException``).
    code = raw_code[:1].upper() + raw_code[1:]
    cls = _BY_CODE.get(code, UpstreamError)
    if cls in (UpstreamRejected, UpstreamNotFound):
        # Those describe the caller's own request, so the upstream's words help them.
        result: UpstreamError = cls(str(error.get("Message") or code))
    else:
        result = cls(_PUBLIC_MESSAGE.get(cls, _PUBLIC_MESSAGE[UpstreamError]))
    if code in _BY_CODE:
        result.bedrock_code = code
    if isinstance(result, UpstreamThrottled):
        retry_after = (
            exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after")
        )
        if retry_after and retry_after.isdigit():
            result.retry_after = float(retry_after)
    return result
