"""Uploads to S3 that are skipped when the same bytes are already there.

Each object we write carries the SHA-256 of its content in its metadata (``strata-sha256``). Before
uploading, a HEAD on the destination compares that value, so re-running a command does not move
gigabytes again. Large files go through boto3's transfer manager, which splits them into parts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from customize.errors import AwsError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

HASH_METADATA_KEY = "strata-sha256"
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(?P<key>.*))?$")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str  # no leading slash; "" for the bucket root

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Location:
        pieces = [self.key.strip("/")] + [p.strip("/") for p in parts]
        return S3Location(self.bucket, "/".join(p for p in pieces if p))

    def as_prefix(self) -> S3Location:
        return S3Location(self.bucket, self.key.rstrip("/") + "/" if self.key else "")


def parse_s3_uri(uri: str) -> S3Location:
    match = _S3_URI.match(uri)
    if match is None:
        raise UsageError(f"{uri!r} is not an s3://bucket/prefix URI")
    return S3Location(match["bucket"], (match["key"] or "").lstrip("/"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class UploadResult:
    location: S3Location
    sha256: str
    size: int
    skipped: bool


def _status(error: Exception) -> int | None:
    response = getattr(error, "response", None)
    return (
        response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(response, dict)
        else None
    )


def ensure_bucket(s3: S3Client, bucket: str) -> None:
    """Fail with a clear line when the bucket is missing or not ours to use."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        status = _status(error)
        if status == 404:
            raise AwsError(f"S3 bucket {bucket!r} does not exist") from None
        if status == 403:
            raise AwsError(f"access denied to S3 bucket {bucket!r}") from None
        raise


def stored_sha256(s3: S3Client, location: S3Location) -> str | None:
    """The content hash recorded on an existing object, or None when there is no object."""
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        if _status(error) == 404:
            return None
        raise
    return head.get("Metadata", {}).get(HASH_METADATA_KEY)


def upload_if_changed(
    s3: S3Client,
    path: Path,
    location: S3Location,
    *,
    sha256: str | None = None,
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
) -> UploadResult:
    from boto3.s3.transfer import TransferConfig

    digest = sha256 or file_sha256(path)
    size = path.stat().st_size
    if stored_sha256(s3, location) == digest:
        return UploadResult(location, digest, size, skipped=True)
    config = TransferConfig(
        multipart_threshold=multipart_threshold, multipart_chunksize=multipart_threshold
    )
    s3.upload_file(
        str(path),
        location.bucket,
        location.key,
        ExtraArgs={"Metadata": {HASH_METADATA_KEY: digest}},
        Config=config,
    )
    return UploadResult(location, digest, size, skipped=False)
