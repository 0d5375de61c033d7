"""Submitting a customization job: upload the data, then create the job once.

Re-submitting the same inputs finds the job already created (same derived name and client request
token) instead of starting a second one, and skips uploads whose content is already in S3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from customize.catalog import CustomizationType, Family
from customize.errors import UsageError
from customize.iam import check_service_role, role_name
from customize.s3 import S3Location, ensure_bucket, file_sha256, upload_if_changed
from customize.tokens import request_token, resource_name

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient

    from customize.aws import AwsContext

DataSource = Path | S3Location


@dataclass(frozen=True)
class JobInputs:
    base_model: str
    family: Family
    customization_type: CustomizationType
    training: DataSource
    validation: DataSource | None
    output: S3Location
    role_arn: str
    hyperparameters: dict[str, str]
    job_name: str | None = None
    model_name: str | None = None
    teacher: str | None = None
    data_prefix: S3Location | None = None


@dataclass(frozen=True)
class JobPlan:
    """Everything about the job that can be worked out without AWS."""

    inputs: JobInputs
    token: str
    job_name: str
    model_name: str
    hashes: dict[str, str] = field(
        default_factory=dict
    )  # "training"/"validation" → sha256 of local files

    def data_location(self, which: str, path: Path) -> S3Location:
        prefix = self.inputs.data_prefix or self.inputs.output.join("data")
        # The content hash in the key keeps a job's input immutable once the job has started.
        return prefix.join(self.hashes[which][:16], path.name)


def _source_id(source: DataSource | None, digest: str | None) -> str | None:
    if source is None:
        return None
    return (
        f"sha256:{digest}"
        if digest
        else source.uri
        if isinstance(source, S3Location)
        else str(source)
    )


def plan_job(inputs: JobInputs) -> JobPlan:
    role_name(inputs.role_arn)  # refuse a malformed ARN before hashing gigabytes
    if inputs.customization_type == "DISTILLATION" and not inputs.teacher:
        raise UsageError("DISTILLATION needs --teacher MODEL_ID")
    hashes = {
        which: file_sha256(source)
        for which, source in (("training", inputs.training), ("validation", inputs.validation))
        if isinstance(source, Path)
    }
    token = request_token(
        {
            "base": inputs.base_model,
            "type": inputs.customization_type,
            "training": _source_id(inputs.training, hashes.get("training")),
            "validation": _source_id(inputs.validation, hashes.get("validation")),
            "output": inputs.output.uri,
            "role": inputs.role_arn,
            "hp": inputs.hyperparameters,
            "name": inputs.job_name,
            "model": inputs.model_name,
            "teacher": inputs.teacher,
        }
    )
    job_name = inputs.job_name or resource_name(f"strata-{inputs.family.name}", token)
    model_name = inputs.model_name or f"{job_name}-model"
    return JobPlan(inputs, token, job_name, model_name, hashes)


@dataclass(frozen=True)
class SubmitResult:
    job_arn: str
    job_name: str
    model_name: str
    token: str
    reused: bool
    uploads: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]


def find_job(bedrock: BedrockClient, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return dict(bedrock.get_model_customization_job(jobIdentifier=name))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def _create_request(
    plan: JobPlan, training: S3Location, validation: S3Location | None
) -> dict[str, Any]:
    inputs = plan.inputs
    request: dict[str, Any] = {
        "jobName": plan.job_name,
        "customModelName": plan.model_name,
        "roleArn": inputs.role_arn,
        "clientRequestToken": plan.token,
        "baseModelIdentifier": inputs.base_model,
        "customizationType": inputs.customization_type,
        "trainingDataConfig": {"s3Uri": training.uri},
        "outputDataConfig": {"s3Uri": inputs.output.uri},
        "hyperParameters": inputs.hyperparameters,
    }
    if validation is not None:
        request["validationDataConfig"] = {"validators": [{"s3Uri": validation.uri}]}
    if inputs.teacher:
        request["customizationConfig"] = {
            "distillationConfig": {"teacherModelConfig": {"teacherModelIdentifier": inputs.teacher}}
        }
    return request


def submit_job(
    aws: AwsContext, plan: JobPlan, *, on_step: Callable[[str], None] = lambda _: None
) -> SubmitResult:
    inputs = plan.inputs
    notes = [note for note in [check_service_role(aws.iam, inputs.role_arn)] if note]
    ensure_bucket(aws.s3, inputs.output.bucket)
    uploads: list[dict[str, Any]] = []
    located: dict[str, S3Location | None] = {"training": None, "validation": None}
    for which, source in (("training", inputs.training), ("validation", inputs.validation)):
        if isinstance(source, Path):
            target = plan.data_location(which, source)
            if target.bucket != inputs.output.bucket:
                ensure_bucket(aws.s3, target.bucket)
            on_step(f"uploading {which} data to {target.uri}")
            result = upload_if_changed(aws.s3, source, target, sha256=plan.hashes[which])
            uploads.append(
                {"data": which, "uri": target.uri, "bytes": result.size, "skipped": result.skipped}
            )
            located[which] = target
        else:
            located[which] = source
    existing = find_job(aws.bedrock, plan.job_name)
    if existing is not None:
        if existing.get("clientRequestToken") != plan.token:
            raise UsageError(
                f"a job named {plan.job_name!r} already exists with other inputs; "
                "pass another --name"
            )
        arn, reused = str(existing["jobArn"]), True
    else:
        training = located["training"]
        assert training is not None  # training data is required by JobInputs
        on_step("creating the customization job")
        response = aws.bedrock.create_model_customization_job(
            **_create_request(plan, training, located["validation"])
        )
        arn, reused = response["jobArn"], False
    return SubmitResult(
        arn, plan.job_name, plan.model_name, plan.token, reused, tuple(uploads), tuple(notes)
    )
