"""One boto3 session, and its clients, for the length of one CLI command.

Credentials come from the standard chain (environment, shared config/credentials files, SSO,
instance metadata); ``--profile`` and ``--region`` select among them. Endpoints follow the
standard ``AWS_ENDPOINT_URL_<SERVICE>`` settings, which is also how tests reach moto and fakes.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client


class AwsContext:
    def __init__(self, region: str | None = None, profile: str | None = None) -> None:
        self.region = region
        self.profile = profile

    @cached_property
    def session(self) -> boto3.Session:
        import boto3

        return boto3.Session(profile_name=self.profile, region_name=self.region)

    @cached_property
    def _config(self) -> Config:
        from botocore.config import Config

        return Config(retries={"mode": "standard"}, user_agent_extra="strata-customize")

    @cached_property
    def bedrock(self) -> BedrockClient:
        return self.session.client("bedrock", config=self._config)

    @cached_property
    def s3(self) -> S3Client:
        return self.session.client("s3", config=self._config)

    @cached_property
    def iam(self) -> IAMClient:
        return self.session.client("iam", config=self._config)
