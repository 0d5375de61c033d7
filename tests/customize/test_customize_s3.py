"""Uploads: multipart through the transfer manager, skipped when the same content is there."""

from __future__ import annotations

import os
from pathlib import Path

from customize.aws import AwsContext
from customize.s3 import S3Location, file_sha256, parse_s3_uri, upload_if_changed
from tests.customize.customize_test_env import Aws

MIB = 1024 * 1024


def test_big_file_goes_up_in_parts_and_is_skipped_the_second_time(tmp_path: Path, aws: Aws) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(os.urandom(11 * MIB))
    s3 = AwsContext().s3
    where = S3Location(aws.bucket, "data/big.jsonl")
    first = upload_if_changed(s3, path, where, multipart_threshold=5 * MIB)
    assert first.skipped is False and first.sha256 == file_sha256(path)
    head = aws.client("s3").head_object(Bucket=aws.bucket, Key=where.key)
    assert head["ETag"].strip('"').endswith("-3")  # S3's ETag for an object sent in 3 parts
    assert head["Metadata"] == {"strata-sha256": first.sha256}

    second = upload_if_changed(s3, path, where, multipart_threshold=5 * MIB)
    assert second.skipped is True
    assert (
        aws.client("s3").head_object(Bucket=aws.bucket, Key=where.key)["LastModified"]
        == head["LastModified"]
    )

    path.write_bytes(os.urandom(MIB))
    third = upload_if_changed(s3, path, where, multipart_threshold=5 * MIB)
    assert third.skipped is False
    assert aws.client("s3").head_object(Bucket=aws.bucket, Key=where.key)["ContentLength"] == MIB


def test_an_object_without_our_hash_is_replaced(tmp_path: Path, aws: Aws) -> None:
    path = tmp_path / "small.jsonl"
    path.write_bytes(b'{"prompt": "a", "completion": "b"}\n')
    aws.client("s3").put_object(Bucket=aws.bucket, Key="data/small.jsonl", Body=path.read_bytes())
    result = upload_if_changed(AwsContext().s3, path, S3Location(aws.bucket, "data/small.jsonl"))
    assert result.skipped is False


def test_s3_uris() -> None:
    assert parse_s3_uri("s3://my-bucket/a/b/") == S3Location("my-bucket", "a/b/")
    assert parse_s3_uri("s3://my-bucket").join("x", "y.jsonl").uri == "s3://my-bucket/x/y.jsonl"
    assert S3Location("b", "p").as_prefix().uri == "s3://b/p/"
