"""Submitting a customization job: check the request, upload the data, then create the job once.

Re-submitting the same inputs finds the job already created (same derived name and client request
token) instead of starting a second one, and skips uploads whose content is already in S3. A job
that ended Failed or Stopped is not silently "found": ``retry=True`` starts a new attempt under
``NAME-r1``, ``NAME-r2``…, and without it the caller is told how to retry.
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
from customize.shapes import check_request
from customize.tokens import request_token, resource_name

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient

    from customize.aws import AwsContext

DataSource = Path | S3Location
ENDED_BADLY = frozenset({"Failed", "Stopped"})
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class InvocationLogs:
    """Training prompts taken from Bedrock model-invocation logs (``invocationLogsConfig``)."""

    source: S3Location
    use_responses: bool = False  # train on the logged responses instead of the teacher's


@dataclass(frozen=True)
class JobInputs:
    base_model: str
    family: Family
    customization_type: CustomizationType
    training: DataSource | InvocationLogs
    validation: tuple[DataSource, ...]
    output: S3Location
    role_arn: str
    hyperparameters: dict[str, str]
    job_name: str | None = None
    model_name: str | None = None
    teacher: str | None = None
    data_prefix: S3Location | None = None
    kms_key: str | None = None
    job_tags: dict[str, str] = field(default_factory=dict)
    model_tags: dict[str, str] = field(default_factory=dict)
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    grader_lambda: str | None = None
    rft_hyperparameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobPlan:
    """Everything about the job that can be worked out without AWS."""

    inputs: JobInputs
    token: str
    job_name: str
    model_name: str
    hashes: dict[str, str] = field(default_factory=dict)  # "training"/"validation-N" → sha256

    def data_location(self, which: str, path: Path) -> S3Location:
        prefix = self.inputs.data_prefix or self.inputs.output.join("data")
        # The content hash in the key keeps a job's input immutable once the job has started.
        return prefix.join(self.hashes[which][:16], path.name)

    def sources(self) -> list[tuple[str, DataSource]]:
        inputs = self.inputs
        named: list[tuple[str, DataSource]] = []
        if not isinstance(inputs.training, InvocationLogs):
            named.append(("training", inputs.training))
        named += [(f"validation-{i + 1}", v) for i, v in enumerate(inputs.validation)]
        return named

    def located(self) -> dict[str, S3Location]:
        """Where each dataset will be read from once uploaded."""
        return {
            which: self.data_location(which, source) if isinstance(source, Path) else source
            for which, source in self.sources()
        }

    def attempt(self, number: int) -> JobPlan:
        """The plan for retry ``number`` (1, 2, …): same inputs, new names and token."""
        if number == 0:
            return self
        token = request_token({"of": self.token, "attempt": number})
        job = f"{self.job_name}-r{number}"
        model = f"{self.model_name}-r{number}"
        return JobPlan(self.inputs, token, job, model, self.hashes)


def _source_id(source: DataSource | InvocationLogs | None, digest: str | None) -> str | None:
    if source is None:
        return None
    if isinstance(source, InvocationLogs):
        return f"logs:{source.source.uri}:{source.use_responses}"
    if digest:
        return f"sha256:{digest}"
    return source.uri if isinstance(source, S3Location) else str(source)


def plan_job(inputs: JobInputs) -> JobPlan:
    role_name(inputs.role_arn)  # refuse a malformed ARN before hashing gigabytes
    if inputs.customization_type == "DISTILLATION" and not inputs.teacher:
        raise UsageError("DISTILLATION needs --teacher MODEL_ID")
    if inputs.customization_type == "REINFORCEMENT_FINE_TUNING" and not inputs.grader_lambda:
        raise UsageError("REINFORCEMENT_FINE_TUNING needs --grader-lambda LAMBDA_ARN")
    if len(inputs.validation) > 10:
        raise UsageError(f"at most 10 --validation datasets, got {len(inputs.validation)}")
    hashes: dict[str, str] = {}
    if isinstance(inputs.training, Path):
        hashes["training"] = file_sha256(inputs.training)
    for index, source in enumerate(inputs.validation):
        if isinstance(source, Path):
            hashes[f"validation-{index + 1}"] = file_sha256(source)
    token = request_token(
        {
            "base": inputs.base_model,
            "type": inputs.customization_type,
            "training": _source_id(inputs.training, hashes.get("training")),
            "validation": [
                _source_id(v, hashes.get(f"validation-{i + 1}"))
                for i, v in enumerate(inputs.validation)
            ],
            "output": inputs.output.uri,
            "role": inputs.role_arn,
            "hp": inputs.hyperparameters,
            "name": inputs.job_name,
            "model": inputs.model_name,
            "teacher": inputs.teacher,
            "kms": inputs.kms_key,
            "tags": [inputs.job_tags, inputs.model_tags],
            "vpc": [list(inputs.subnets), list(inputs.security_groups)],
            "grader": inputs.grader_lambda,
            "rft": inputs.rft_hyperparameters,
        }
    )
    # Derived names leave room for a retry suffix (-rN) and the model suffix within 63 chars.
    job_name = inputs.job_name or resource_name(f"strata-{inputs.family.name}", token, 36)
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
    attempt: int = 0


def find_job(bedrock: BedrockClient, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return dict(bedrock.get_model_customization_job(jobIdentifier=name))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


def create_request(plan: JobPlan) -> dict[str, Any]:
    """The CreateModelCustomizationJob request, with data where it will be once uploaded."""
    inputs = plan.inputs
    located = plan.located()
    request: dict[str, Any] = {
        "jobName": plan.job_name,
        "customModelName": plan.model_name,
        "roleArn": inputs.role_arn,
        "clientRequestToken": plan.token,
        "baseModelIdentifier": inputs.base_model,
        "customizationType": inputs.customization_type,
        "outputDataConfig": {"s3Uri": inputs.output.uri},
    }
    if isinstance(inputs.training, InvocationLogs):
        request["trainingDataConfig"] = {
            "invocationLogsConfig": {
                "usePromptResponse": inputs.training.use_responses,
                "invocationLogSource": {"s3Uri": inputs.training.source.uri},
            }
        }
    else:
        request["trainingDataConfig"] = {"s3Uri": located["training"].uri}
    if inputs.customization_type != "REINFORCEMENT_FINE_TUNING":
        request["hyperParameters"] = inputs.hyperparameters
    validators = [
        {"s3Uri": location.uri} for which, location in located.items() if which != "training"
    ]
    if validators:
        request["validationDataConfig"] = {"validators": validators}
    if inputs.teacher:
        request["customizationConfig"] = {
            "distillationConfig": {"teacherModelConfig": {"teacherModelIdentifier": inputs.teacher}}
        }
    if inputs.grader_lambda:
        rft: dict[str, Any] = {
            "graderConfig": {"lambdaGrader": {"lambdaArn": inputs.grader_lambda}}
        }
        if inputs.rft_hyperparameters:
            rft["hyperParameters"] = inputs.rft_hyperparameters
        request["customizationConfig"] = {"rftConfig": rft}
    if inputs.kms_key:
        request["customModelKmsKeyId"] = inputs.kms_key
    if inputs.job_tags:
        request["jobTags"] = _tags(inputs.job_tags)
    if inputs.model_tags:
        request["customModelTags"] = _tags(inputs.model_tags)
    if inputs.subnets or inputs.security_groups:
        request["vpcConfig"] = {
            "subnetIds": list(inputs.subnets),
            "securityGroupIds": list(inputs.security_groups),
        }
    return request


def check_plan(plan: JobPlan) -> None:
    """Every name, URI and number Bedrock would refuse, before anything is uploaded."""
    hint = (
        "pass --name / --model-name that fit (letters, digits, single - or _, at most 63)"
        if plan.inputs.job_name or plan.inputs.model_name
        else ""
    )
    local = [name for name, source in plan.sources() if isinstance(source, Path)]
    if local:
        hint = "; ".join(
            filter(None, [hint, "S3 keys come from the file names: rename files to match"])
        )
    check_request("bedrock", "CreateModelCustomizationJob", create_request(plan), hint=hint)


def _pick_attempt(
    bedrock: BedrockClient, plan: JobPlan, retry: bool
) -> tuple[JobPlan, dict[str, Any] | None]:
    """The attempt to use: an existing job with our inputs, or the first free retry name."""
    for number in range(MAX_ATTEMPTS + 1):
        candidate = plan.attempt(number)
        existing = find_job(bedrock, candidate.job_name)
        if existing is None:
            return candidate, None
        if existing.get("clientRequestToken") != candidate.token:
            raise UsageError(
                f"a job named {candidate.job_name!r} already exists with other inputs; "
                "pass another --name"
            )
        status = str(existing.get("status"))
        if status not in ENDED_BADLY:
            return candidate, existing
        if not retry:
            reason = existing.get("failureMessage") if status == "Failed" else None
            raise UsageError(
                f"job {candidate.job_name} already ran with these inputs and ended {status}"
                + (f" ({reason})" if reason else "")
                + f"; pass --retry to run it again as {plan.attempt(number + 1).job_name}, "
                "or --name NEW_NAME"
            )
    raise UsageError(f"{MAX_ATTEMPTS} attempts of {plan.job_name} already ended badly")


def submit_job(
    aws: AwsContext,
    plan: JobPlan,
    *,
    retry: bool = False,
    on_step: Callable[[str], None] = lambda _: None,
) -> SubmitResult:
    inputs = plan.inputs
    check_plan(plan)
    notes = [note for note in [check_service_role(aws.iam, inputs.role_arn)] if note]
    ensure_bucket(aws.s3, inputs.output.bucket)
    uploads: list[dict[str, Any]] = []
    for which, target in plan.located().items():
        source = dict(plan.sources())[which]
        if not isinstance(source, Path):
            continue
        if target.bucket != inputs.output.bucket:
            ensure_bucket(aws.s3, target.bucket)
        on_step(f"uploading {which} data to {target.uri}")
        result = upload_if_changed(aws.s3, source, target, sha256=plan.hashes[which])
        uploads.append(
            {"data": which, "uri": target.uri, "bytes": result.size, "skipped": result.skipped}
        )
    chosen, existing = _pick_attempt(aws.bedrock, plan, retry)
    if existing is not None:
        arn, reused = str(existing["jobArn"]), True
    else:
        check_plan(chosen)
        on_step(f"creating the customization job {chosen.job_name}")
        response = aws.bedrock.create_model_customization_job(**create_request(chosen))
        arn, reused = response["jobArn"], False
    attempt = 0 if chosen is plan else int(chosen.job_name.rsplit("-r", 1)[-1])
    return SubmitResult(
        arn,
        chosen.job_name,
        chosen.model_name,
        chosen.token,
        reused,
        tuple(uploads),
        tuple(notes),
        attempt,
    )
