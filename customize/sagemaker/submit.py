"""Submitting a training or tuning job: checks that need AWS, uploads, then the one create call.

Order matters for what a mistake costs: the pure request checks (request.py) run first, then
the bucket's region and the role (read-only calls), then the uploads, and only then
CreateTrainingJob. Uploads are content-addressed (``strata-data/<sha>/``,
``strata-source/<sha>/``), so re-running a command moves no bytes twice.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from customize.errors import UsageError
from customize.iam import check_service_role
from customize.s3 import S3Location, ensure_bucket, file_sha256, parse_s3_uri, upload_if_changed
from customize.sagemaker.package import build_source_archive
from customize.sagemaker.request import JobInputs

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Upload:
    path: Path
    location: S3Location
    sha256: str


@dataclass(frozen=True)
class Staged:
    """What will be uploaded, and the job inputs that point at it."""

    inputs: JobInputs
    uploads: tuple[Upload, ...]
    workdir: Path


def stage(
    output_uri: str,
    data: Path,
    eval_data: Path | None,
    base: str,
    tags: dict[str, str],
) -> Staged:
    """Plan the uploads (hashing files, building the source archive); no AWS call."""
    output = parse_s3_uri(output_uri)
    for flag, path in (("--data", data), ("--eval", eval_data)):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path} is not a file")
    channels: dict[str, S3Location] = {}
    uploads: list[Upload] = []
    for channel, path in (("train", data), ("eval", eval_data)):
        if path is None:
            continue
        digest = file_sha256(path)
        folder = output.join("strata-data", digest[:16])
        uploads.append(Upload(path, folder.join(path.name), digest))
        channels[channel] = folder.as_prefix()
    if base.startswith("s3://"):
        channels["base"] = parse_s3_uri(base).as_prefix()
    elif base != "builtin":
        raise UsageError(
            f"--base {base!r}: a SageMaker job cannot read a local folder; upload the model "
            "folder to S3 and pass --base s3://bucket/prefix/ (or use builtin)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="strata-sm-"))
    archive = build_source_archive(workdir)
    digest = file_sha256(archive.path)
    source = output.join("strata-source", digest[:16], "sourcedir.tar.gz")
    uploads.append(Upload(archive.path, source, digest))
    data_hash = uploads[0].sha256
    inputs = JobInputs(output, source, channels, {**tags, "strata:data-sha256": data_hash})
    return Staged(inputs, tuple(uploads), workdir)


def bucket_region(s3: S3Client, bucket: str) -> str:
    ensure_bucket(s3, bucket)
    location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    # S3 reports us-east-1 as no constraint, and very old eu-west-1 buckets as "EU".
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, str(location))


def check_bucket_region(s3: S3Client, bucket: str, region: str) -> None:
    found = bucket_region(s3, bucket)
    if found != region:
        raise UsageError(
            f"--output bucket {bucket!r} is in {found}, but the job would run in {region}; "
            f"SageMaker needs the bucket in the job's region (pass --region {found} or another "
            "bucket)"
        )


def preflight(
    s3: S3Client, iam: IAMClient, staged: Staged, region: str, role_arn: str
) -> list[str]:
    """Read-only checks against AWS; returns notes to show. Nothing is written yet."""
    check_bucket_region(s3, staged.inputs.output.bucket, region)
    for channel in ("base",):
        if channel in staged.inputs.channels:
            check_bucket_region(s3, staged.inputs.channels[channel].bucket, region)
    note = check_service_role(iam, role_arn, SAGEMAKER_PRINCIPAL, "SageMaker")
    return [note] if note else []


def upload_all(
    s3: S3Client, staged: Staged, on_step: Callable[[str], None] = lambda _: None
) -> int:
    """Uploads what changed; returns the bytes sent."""
    sent = 0
    for upload in staged.uploads:
        on_step(f"uploading {upload.path.name} to {upload.location.uri}")
        result = upload_if_changed(s3, upload.path, upload.location, sha256=upload.sha256)
        sent += 0 if result.skipped else result.size
    return sent


def create_training_job(sagemaker: Any, request: dict[str, Any]) -> tuple[str, bool]:
    """(ARN, already existed). The job name is derived from the inputs, so a re-run finds it."""
    from botocore.exceptions import ClientError

    try:
        return str(sagemaker.create_training_job(**request)["TrainingJobArn"]), False
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceInUse":
            raise
    existing = sagemaker.describe_training_job(TrainingJobName=request["TrainingJobName"])
    return str(existing["TrainingJobArn"]), True
