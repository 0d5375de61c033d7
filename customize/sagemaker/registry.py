"""SageMaker Model Registry: one model package group per base model and task.

A completed job becomes a model package version whose customer metadata carries the lineage
(data hash, training or tuning job) and, after the Bedrock import, the import job and imported
model. Approval starts as PendingManualApproval unless asked otherwise, as the registry intends:
a person (or a CI gate) approves what ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from customize.errors import UsageError
from customize.sagemaker.follow import JobSnapshot

APPROVALS = ("PendingManualApproval", "Approved", "Rejected")
_GROUP_CLEAN = re.compile(r"[^a-zA-Z0-9]+")


def group_name(base: str, task: str) -> str:
    """``strata-<base>-<task>``, in the group-name alphabet (letters, digits, hyphens; ≤ 63)."""
    base_part = _GROUP_CLEAN.sub("-", base.rstrip("/").rsplit("/", 1)[-1]).strip("-") or "base"
    task_part = _GROUP_CLEAN.sub("-", task).strip("-") or "task"
    return f"strata-{base_part}-{task_part}"[:63].rstrip("-")


@dataclass(frozen=True)
class Registered:
    group: str
    package_arn: str
    version: int | None
    approval: str


def _ensure_group(sagemaker: Any, group: str, base: str, task: str) -> None:
    from botocore.exceptions import ClientError

    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        return
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in (
            "ValidationException",
            "ResourceNotFound",
        ):
            raise
    sagemaker.create_model_package_group(
        ModelPackageGroupName=group,
        ModelPackageGroupDescription=f"Strata adapters for {base}, task {task}",
    )


def lineage_metadata(state: JobSnapshot) -> dict[str, str]:
    hps = state.hyperparameters
    data = {
        "strata:training-job": state.arn,
        "strata:method": hps.get("method", ""),
        "strata:base": hps.get("base", ""),
        "strata:model-prefix": state.model_prefix,
        "strata:data-sha256": hps.get("data_sha256", ""),
    }
    if state.tuning_job:
        data["strata:tuning-job"] = state.tuning_job
    for name, value in state.metrics.items():
        data[f"strata:metric:{name}"] = f"{value:.6g}"
    return {k: v for k, v in data.items() if v}


def register(
    sagemaker: Any,
    state: JobSnapshot,
    *,
    task: str | None = None,
    approval: str = "PendingManualApproval",
) -> Registered:
    """A new model package version in ``strata-<base>-<task>`` for a Completed job."""
    if state.status != "Completed":
        raise UsageError(
            f"training job {state.name} is {state.status}; only a Completed job is registered"
        )
    if approval not in APPROVALS:
        raise UsageError(f"--approval must be one of {', '.join(APPROVALS)}")
    base = state.hyperparameters.get("base", "base")
    task = task or state.hyperparameters.get("task") or "task"
    group = group_name(base, task)
    _ensure_group(sagemaker, group, base, task)
    metadata = lineage_metadata(state)
    response = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"{state.hyperparameters.get('method', 'adapter')} "
        f"from {state.name}",
        ModelApprovalStatus=approval,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": state.image,
                    "ModelDataSource": {
                        "S3DataSource": {
                            "S3Uri": state.model_prefix,
                            "S3DataType": "S3Prefix",
                            "CompressionType": "None",
                        }
                    },
                }
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties=metadata,
        MetadataProperties={"GeneratedBy": state.arn},
    )
    arn = str(response["ModelPackageArn"])
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    return Registered(group, arn, described.get("ModelPackageVersion"), approval)


def find_package(sagemaker: Any, training_job_arn: str) -> dict[str, Any] | None:
    """The model package registered from ``training_job_arn``, searching Strata's groups."""
    groups = sagemaker.list_model_package_groups(NameContains="strata-").get(
        "ModelPackageGroupSummaryList", []
    )
    for group in groups:
        packages = sagemaker.list_model_packages(
            ModelPackageGroupName=group["ModelPackageGroupName"]
        ).get("ModelPackageSummaryList", [])
        for summary in packages:
            package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            metadata = package.get("CustomerMetadataProperties", {})
            if metadata.get("strata:training-job") == training_job_arn:
                return dict(package)
    return None


def record_import(sagemaker: Any, package: dict[str, Any], import_job: str, model: str) -> None:
    """Lineage the other way: the package learns which Bedrock import and model it became."""
    metadata = dict(package.get("CustomerMetadataProperties", {}))
    metadata.update({"strata:bedrock-import-job": import_job, "strata:bedrock-model": model})
    sagemaker.update_model_package(
        ModelPackageArn=package["ModelPackageArn"], CustomerMetadataProperties=metadata
    )
