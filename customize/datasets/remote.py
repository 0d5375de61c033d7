"""Datasets already in S3: check that the object exists, then stream it through the same scan.

The object is read in fixed-size chunks through a buffered reader, so validating a 1 GB object
holds about one buffer and one line in memory, as for a local file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from customize.datasets.validate import Opener
from customize.errors import DatasetError
from customize.s3 import S3Location

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_BUFFER = 1024 * 1024


class _BodyReader(io.RawIOBase):
    """botocore's StreamingBody as a raw stream, so io.BufferedReader can give us readline."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def object_size(s3: S3Client, location: S3Location, which: str) -> int:
    """The object's size; a clear error when it is missing, a prefix, or not ours to read."""
    from botocore.exceptions import ClientError

    if not location.key or location.key.endswith("/"):
        raise DatasetError(f"{which} data {location.uri} is a prefix; give the .jsonl object")
    try:
        head = s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise DatasetError(f"{which} data {location.uri} does not exist") from None
        if status == 403:
            denied = f"{which} data {location.uri}: access denied (s3:GetObject)"
            raise DatasetError(denied) from None
        raise
    return int(head.get("ContentLength", 0))


def s3_opener(s3: S3Client, location: S3Location) -> Opener:
    @contextmanager
    def opened() -> Iterator[BinaryIO]:
        body = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"]
        try:
            yield io.BufferedReader(_BodyReader(body), buffer_size=_BUFFER)
        finally:
            body.close()

    return opened
