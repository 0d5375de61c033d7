"""Uploading a checked model folder and running a Bedrock model import job on it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from customize.errors import UsageError
from customize.iam import check_service_role, role_name
from customize.progress import Rows, elapsed_since
from customize.s3 import S3Location, ensure_bucket, file_sha256, upload_if_changed
from customize.shapes import check_request
from customize.tokens import request_token, resource_name

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient

    from customize.aws import AwsContext

TERMINAL = frozenset({"Completed", "Failed"})
_MODEL_NAME = re.compile(r"^([0-9a-zA-Z][_-]?){1,63}$")


@dataclass(frozen=True)
class ImportSnapshot:
    arn: str
    name: str
    status: str
    imported_model_arn: str | None
    imported_model_name: str | None
    failure_message: str | None
    created: datetime | None
    ended: datetime | None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_snapshot(response: Mapping[str, Any]) -> ImportSnapshot:
    status = str(response.get("status", "Unknown"))
    return ImportSnapshot(
        arn=str(response.get("jobArn", "")),
        name=str(response.get("jobName", "")),
        status=status,
        imported_model_arn=response.get("importedModelArn"),
        imported_model_name=response.get("importedModelName"),
        failure_message=response.get("failureMessage") if status == "Failed" else None,
        created=response.get("creationTime"),
        ended=response.get("endTime") if status in TERMINAL else None,
    )


def import_rows(state: ImportSnapshot, now: datetime) -> Rows:
    return [
        ("Import job", state.name),
        ("Status", state.status),
        ("Elapsed", elapsed_since(state.created, state.ended, now)),
    ]


@dataclass(frozen=True)
class ImportPlan:
    model_dir: Path
    files: dict[str, str]  # path relative to model_dir → sha256
    prefix: S3Location
    role_arn: str
    model_name: str
    job_name: str
    token: str
    options: dict[str, Any] = field(default_factory=dict)  # KMS key, tags, VPC: as the API names

    def create_request(self) -> dict[str, Any]:
        return {
            "jobName": self.job_name,
            "importedModelName": self.model_name,
            "roleArn": self.role_arn,
            "modelDataSource": {"s3DataSource": {"s3Uri": self.prefix.as_prefix().uri}},
            "clientRequestToken": self.token,
            **self.options,
        }


def _model_files(model_dir: Path) -> list[Path]:
    # Hidden entries (.cache/, .gitattributes) are local bookkeeping, not part of the model.
    return sorted(
        p
        for p in model_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(model_dir).parts)
    )


def plan_import(
    model_dir: Path,
    output: S3Location,
    role_arn: str,
    model_name: str,
    options: dict[str, Any] | None = None,
) -> ImportPlan:
    if not _MODEL_NAME.match(model_name):
        raise UsageError(
            f"--name {model_name!r} must be letters and digits, with single - or _ between them"
        )
    role_name(role_arn)
    files = {p.relative_to(model_dir).as_posix(): file_sha256(p) for p in _model_files(model_dir)}
    token = request_token(
        {
            "files": files,
            "output": output.uri,
            "role": role_arn,
            "name": model_name,
            "options": options or {},
        }
    )
    # Each distinct folder gets its own prefix: a running import never sees its files change.
    prefix = output.join(model_name, token[:12])
    plan = ImportPlan(
        model_dir,
        files,
        prefix,
        role_arn,
        model_name,
        resource_name(f"strata-import-{model_name}", token),
        token,
        dict(options or {}),
    )
    # Every name, key and option Bedrock would refuse, before gigabytes are uploaded.
    check_request("bedrock", "CreateModelImportJob", plan.create_request())
    return plan


def find_import_job(bedrock: BedrockClient, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return dict(bedrock.get_model_import_job(jobIdentifier=name))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


@dataclass(frozen=True)
class ImportStarted:
    job_arn: str
    job_name: str
    s3_uri: str
    reused: bool
    uploaded_bytes: int
    skipped_files: int
    notes: tuple[str, ...]


def start_import(
    aws: AwsContext, plan: ImportPlan, *, on_step: Callable[[str], None] = lambda _: None
) -> ImportStarted:
    notes = [note for note in [check_service_role(aws.iam, plan.role_arn)] if note]
    ensure_bucket(aws.s3, plan.prefix.bucket)
    uploaded = skipped = 0
    for relative, digest in plan.files.items():
        on_step(f"uploading {relative}")
        result = upload_if_changed(
            aws.s3, plan.model_dir / relative, plan.prefix.join(relative), sha256=digest
        )
        skipped += result.skipped
        uploaded += 0 if result.skipped else result.size
    source = plan.prefix.as_prefix().uri
    existing = find_import_job(aws.bedrock, plan.job_name)
    if existing is not None:
        return ImportStarted(
            str(existing["jobArn"]), plan.job_name, source, True, uploaded, skipped, tuple(notes)
        )
    on_step("creating the model import job")
    response = aws.bedrock.create_model_import_job(**plan.create_request())
    return ImportStarted(
        response["jobArn"], plan.job_name, source, False, uploaded, skipped, tuple(notes)
    )


def get_import(bedrock: BedrockClient, job: str) -> ImportSnapshot:
    return import_snapshot(bedrock.get_model_import_job(jobIdentifier=job))
