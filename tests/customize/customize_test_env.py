"""Handles the customize tests use to arrange and inspect the AWS they run against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from tests.customize.customize_fake_bedrock import ACCOUNT, REGION, FakeBedrock

__all__ = ["BEDROCK_TRUST", "REGION", "Aws"]

BEDROCK_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "bedrock.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass
class Aws:
    """Handles for arranging and inspecting the fake AWS a test runs against."""

    moto_url: str
    fake: FakeBedrock
    bucket: str
    role_arn: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def moto_bedrock(self) -> Any:
        """moto's in-memory Bedrock backend (the server thread shares this process's state)."""
        from moto.backends import get_backend

        return get_backend("bedrock")[ACCOUNT][REGION]

    def objects(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        listed = self.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return {item["Key"]: item for item in listed.get("Contents", [])}
