"""``strata customize import --from-training-job``: a SageMaker job's export into Bedrock.

The job wrote its merged export (``--export bf16``) as plain files under
OUTPUT/JOB/output/model/export/. They are fetched into a local folder so the import goes through
exactly the checks and upload of ``strata customize import --model-dir``; afterwards the model
package learns which import it became, and the variant (if named) records the whole lineage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customize.aws import AwsContext
from customize.errors import UsageError
from customize.s3 import parse_s3_uri
from customize.sagemaker import clients
from customize.sagemaker.follow import describe
from customize.sagemaker.registry import find_package, record_import


@dataclass
class Handoff:
    folder: Path
    job_arn: str
    base: str
    method: str
    hyperparameters: dict[str, str]
    package: dict[str, Any] | None
    lineage: dict[str, str] = field(default_factory=dict)


def fetch_export(aws: AwsContext, job: str, workdir: Path) -> Handoff:
    sagemaker = clients.sagemaker(aws)
    state = describe(sagemaker, job)
    if state.status != "Completed":
        raise UsageError(
            f"training job {state.name} is {state.status}; only a Completed job imports"
        )
    prefix = parse_s3_uri(state.model_prefix).join("export").as_prefix()
    folder = workdir / "export"
    count = 0
    paginator = aws.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=prefix.bucket, Prefix=prefix.key):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix.key) :]
            if relative and not relative.endswith("/"):
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                aws.s3.download_file(prefix.bucket, item["Key"], str(folder / relative))
                count += 1
    if count == 0:
        raise UsageError(
            f"training job {state.name} wrote no merged export under {prefix.uri}; "
            "train with --export bf16 (LoRA only)"
        )
    package = find_package(sagemaker, state.arn)
    metadata = (package or {}).get("CustomerMetadataProperties", {})
    lineage = {
        "dataset": f"sha256:{metadata['strata:data-sha256']}"
        if "strata:data-sha256" in metadata
        else "",
        "training_job": state.arn,
        "tuning_job": state.tuning_job or "",
        "model_package": str((package or {}).get("ModelPackageArn", "")),
    }
    return Handoff(
        folder=folder,
        job_arn=state.arn,
        base=state.hyperparameters.get("base", ""),
        method=state.hyperparameters.get("method", "lora"),
        hyperparameters={
            k: v for k, v in state.hyperparameters.items() if not k.startswith("sagemaker_")
        },
        package=package,
        lineage={k: v for k, v in lineage.items() if v},
    )


def complete(
    aws: AwsContext, handoff: Handoff, import_job: str, model_arn: str, variant: str | None
) -> dict[str, str]:
    """After a Completed import: lineage on the model package, and the variant if named."""
    from customize.variants.store import Variant, VariantStore

    if handoff.package is not None:
        record_import(clients.sagemaker(aws), handoff.package, import_job, model_arn)
    lineage = {**handoff.lineage, "import_job": import_job, "imported_model": model_arn}
    if variant is not None:
        VariantStore.default().add(
            Variant(
                name=variant,
                target=f"bedrock:{model_arn}",
                base_model=handoff.base or None,
                method=f"sagemaker-{handoff.method}",
                dataset_hash=lineage.get("dataset"),
                hyperparameters=handoff.hyperparameters,
                job_arn=handoff.job_arn,
                import_job_arn=import_job,
                model_arn=model_arn,
                lineage=lineage,
            )
        )
    return lineage
