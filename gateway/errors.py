"""The gateway's one error tree.

    StrataError
    ├── InvalidRequest            400  bad JSON, wrong types, missing fields
    │   └── ContextLengthExceeded 400  the prompt does not fit the model's context
    ├── Unauthorized              401  missing or wrong API key; carries WWW-Authenticate
    ├── Forbidden                 403  a key without the right scope (admin routes)
    ├── NotFound                  404  unknown alias, target or route
    ├── MethodNotAllowed          405  a known route called with another method; carries Allow
    ├── Conflict                  409  the state changed under the request (an experiment's
    │                                  version, one running experiment per alias)
    ├── RequestTimeout            408  the client sent its body too slowly
    ├── PayloadTooLarge           413  body over the configured limit
    ├── RateLimited               429  our own limits; carries Retry-After
    ├── UpstreamError             502  the provider failed in a way we cannot name better
        ├── UpstreamThrottled     429  the provider throttled us (Bedrock ThrottlingException...)
        ├── UpstreamRejected      400  the provider refused the request as invalid
        ├── UpstreamDenied        502  the provider refused our credentials or access
        ├── UpstreamNotFound      404  the provider does not know the model
        ├── UpstreamUnavailable   503  the provider or model is not available now
        │   └── CircuitOpen       503  every target's breaker is open; carries Retry-After
        └── UpstreamTimeout       504  the provider did not answer in time
    ├── DeadlineExceeded          504  the call's own deadline passed (route timeout_ms or the
    │                                  caller's x-strata-timeout-ms); never retried
    └── ConfigError               500  a config file or setting is wrong (start-up only)

Providers translate their own exceptions into this tree and say, per error, whether it is worth
retrying (``retryable``) and how long the upstream asked us to wait (``retry_after_s``); one
exception handler turns it into an HTTP response shaped for the surface that was called.
Messages of 5xx errors are written for clients and must never carry upstream internals.
"""

from __future__ import annotations


class StrataError(Exception):
    status: int = 500
    # The name Bedrock clients (botocore) turn into an exception class on the Bedrock surface.
    bedrock_code: str = "InternalServerException"
    # The OpenAI error "type" on the OpenAI surface.
    openai_type: str = "server_error"
    # The OpenAI error "code" (``context_length_exceeded``...), None where OpenAI sends none.
    openai_code: str | None = None
    retryable: bool = False

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        # Set by the surface (request id, attempts, target) and sent with the error response.
        self.response_headers: dict[str, str] = {}

    def headers(self) -> dict[str, str]:
        return {}

    def code(self) -> str | None:
        return self.openai_code


class InvalidRequest(StrataError):
    status = 400
    bedrock_code = "ValidationException"
    openai_type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    openai_code = "context_length_exceeded"


class Unauthorized(StrataError):
    status = 401
    bedrock_code = "UnrecognizedClientException"
    openai_type = "authentication_error"

    def headers(self) -> dict[str, str]:
        # RFC 6750 section 3: a 401 names the scheme the client should use.
        return {"WWW-Authenticate": 'Bearer realm="strata"'}


class Forbidden(StrataError):
    status = 403
    bedrock_code = "AccessDeniedException"
    openai_type = "permission_error"


class NotFound(StrataError):
    status = 404
    bedrock_code = "ResourceNotFoundException"
    openai_type = "not_found_error"


class MethodNotAllowed(StrataError):
    status = 405
    # What AWS services answer for a request that maps to no operation; botocore raises a
    # ClientError with this code and, unlike InternalServerException, does not retry it.
    bedrock_code = "UnknownOperationException"
    openai_type = "invalid_request_error"

    def __init__(self, message: str, *, allow: str) -> None:
        super().__init__(message)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allow}


class Conflict(StrataError):
    status = 409
    bedrock_code = "ConflictException"
    openai_type = "invalid_request_error"


class RequestTimeout(StrataError):
    status = 408
    bedrock_code = "ValidationException"
    openai_type = "invalid_request_error"


class PayloadTooLarge(StrataError):
    status = 413
    bedrock_code = "ValidationException"
    openai_type = "invalid_request_error"


class _RetryAfter(StrataError):
    def __init__(self, message: str, *, retry_after: float = 1.0, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        # Retry-After takes whole seconds; never advertise 0, clients would spin.
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class RateLimited(_RetryAfter):
    status = 429
    bedrock_code = "ThrottlingException"
    openai_type = "rate_limit_error"


class UpstreamError(StrataError):
    status = 502
    bedrock_code = "InternalServerException"
    openai_type = "api_error"
    # The upstream's own Retry-After, when it sent one; the retry policy never retries sooner.
    retry_after_s: float | None = None

    def code(self) -> str | None:
        # Upstream failures name Bedrock's code, so a client can tell a throttle from a timeout.
        return self.bedrock_code


class UpstreamThrottled(_RetryAfter, UpstreamError):
    status = 429
    bedrock_code = "ThrottlingException"
    openai_type = "rate_limit_error"
    retryable = True


class UpstreamRejected(UpstreamError):
    status = 400
    bedrock_code = "ValidationException"
    openai_type = "invalid_request_error"


class UpstreamDenied(UpstreamError):
    status = 502
    bedrock_code = "AccessDeniedException"
    openai_type = "api_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    bedrock_code = "ServiceUnavailableException"
    openai_type = "api_error"
    retryable = True


class CircuitOpen(_RetryAfter, UpstreamUnavailable):
    status = 503
    bedrock_code = "ServiceUnavailableException"
    openai_type = "api_error"
    retryable = False


class DeadlineExceeded(StrataError):
    status = 504
    bedrock_code = "ModelTimeoutException"
    openai_type = "timeout"


class UpstreamTimeout(UpstreamError):
    status = 504
    bedrock_code = "ModelTimeoutException"
    openai_type = "api_error"


class ConfigError(StrataError):
    """A configuration file or setting is wrong; raised at start-up, never from a request."""


class UpstreamNotFound(UpstreamError):
    status = 404
    bedrock_code = "ResourceNotFoundException"
    openai_type = "not_found_error"
