"""SageMaker and CloudWatch Logs clients from the command's ``AwsContext`` session."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sagemaker import SageMakerClient

    from customize.aws import AwsContext


def _config() -> Config:
    from botocore.config import Config

    return Config(retries={"mode": "standard"}, user_agent_extra="strata-sagemaker")


def sagemaker(aws: AwsContext) -> SageMakerClient:
    return aws.session.client("sagemaker", config=_config())


def logs(aws: AwsContext) -> CloudWatchLogsClient:
    return aws.session.client("logs", config=_config())


def region_of(aws: AwsContext) -> str:
    from botocore.exceptions import NoRegionError

    region = aws.session.region_name
    if not region:
        raise NoRegionError()
    return region
