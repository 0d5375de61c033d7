"""Turn botocore and boto3 exceptions into one line a user can act on.

botocore is imported lazily elsewhere; if it was never imported, no exception can come from it,
so this module looks it up in ``sys.modules`` instead of importing it.
"""

from __future__ import annotations

import sys
from typing import Any

_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
}


def client_error_line(
    code: str, message: str, operation: str, status: int | None, extra: dict[str, Any]
) -> str:
    if code == "NoSuchBucket":
        bucket = extra.get("BucketName")
        return (
            f"S3 bucket {bucket!r} does not exist"
            if bucket
            else f"S3 bucket does not exist ({operation})"
        )
    if code in ("AccessDenied", "AccessDeniedException") or (
        status == 403 and code in ("403", "Forbidden")
    ):
        return f"access denied on {operation}: {message or 'no permission'}"
    if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
        return f"AWS credentials have expired ({operation}); refresh them (e.g. aws sso login)"
    if code in _CREDENTIAL_CODES:
        return f"AWS rejected the credentials on {operation} ({code}): {message}"
    if code in ("ResourceNotFoundException", "NoSuchEntity", "NoSuchKey", "404", "NotFound"):
        return f"not found ({operation}): {message or code}"
    if code == "ValidationException":
        return f"Bedrock rejected the request ({operation}): {message}"
    return f"{operation} failed: {code}: {message}" if message else f"{operation} failed: {code}"


def describe_aws_error(error: BaseException) -> str | None:
    """One line for an AWS SDK error, or None when ``error`` did not come from the SDK."""
    exceptions = sys.modules.get("botocore.exceptions")
    if exceptions is None:
        return None
    if isinstance(error, exceptions.ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return client_error_line(
            str(details.get("Code", "Unknown")),
            str(details.get("Message", "")),
            error.operation_name,
            status,
            dict(details),
        )
    if isinstance(error, exceptions.NoCredentialsError):
        return (
            "no AWS credentials found: configure them (aws configure / aws sso login) "
            "or pass --profile"
        )
    if isinstance(error, exceptions.PartialCredentialsError):
        return f"incomplete AWS credentials: {error}"
    if isinstance(error, exceptions.ProfileNotFound):
        return f"AWS profile {error.kwargs.get('profile')!r} not found in the AWS config files"
    if isinstance(error, exceptions.NoRegionError):
        return "no AWS region set: pass --region or set AWS_REGION"
    if isinstance(error, exceptions.EndpointConnectionError):
        return f"cannot reach AWS endpoint {error.kwargs.get('endpoint_url')}"
    if isinstance(error, exceptions.ParamValidationError):
        return f"invalid AWS request: {' '.join(str(error).split())}"
    if isinstance(error, exceptions.BotoCoreError):
        return f"AWS SDK error: {error}"
    boto3_exceptions = sys.modules.get("boto3.exceptions")
    if boto3_exceptions is not None and isinstance(error, boto3_exceptions.S3UploadFailedError):
        return f"S3 upload failed: {error}"
    return None
