"""Building a variant from what Bedrock knows about a finished job or import."""

from __future__ import annotations

from typing import TYPE_CHECKING

from customize.catalog import model_id_of
from customize.errors import UsageError
from customize.imports.submit import get_import
from customize.jobs.follow import snapshot
from customize.s3 import HASH_METADATA_KEY, parse_s3_uri
from customize.serving.provision import serving_for_model
from customize.variants.store import Variant

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_s3 import S3Client


def dataset_hash(s3: S3Client, uri: str | None) -> str | None:
    """The content hash Strata stored on the training object, when Strata uploaded it."""
    from botocore.exceptions import ClientError

    if not uri or uri.endswith("/"):
        return None
    location = parse_s3_uri(uri)
    try:
        head = s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        # The hash is a nicety for the record; a variant does not need read access to the data.
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (403, 404):
            return None
        raise
    value = head.get("Metadata", {}).get(HASH_METADATA_KEY)
    return f"sha256:{value}" if value else None


def variant_from_job(
    bedrock: BedrockClient, s3: S3Client, name: str, job: str, *, notes: str | None = None
) -> Variant:
    state = snapshot(bedrock.get_model_customization_job(jobIdentifier=job))
    if state.status != "Completed":
        raise UsageError(
            f"job {state.name} is {state.status}; only a Completed job makes a variant"
        )
    if not state.output_model_arn:
        raise UsageError(f"job {state.name} reports no output model ARN")
    serving = serving_for_model(bedrock, state.output_model_arn)
    return Variant(
        name=name,
        target=f"bedrock:{serving or state.output_model_arn}",
        base_model=model_id_of(state.base_model_arn) if state.base_model_arn else None,
        method=(state.customization_type or "FINE_TUNING").lower(),
        dataset_hash=dataset_hash(s3, state.training_data_uri),
        hyperparameters=state.hyperparameters,
        job_arn=state.arn,
        model_arn=state.output_model_arn,
        notes=notes,
    )


def variant_from_import(
    bedrock: BedrockClient, name: str, job: str, *, notes: str | None = None
) -> Variant:
    state = get_import(bedrock, job)
    if state.status != "Completed" or not state.imported_model_arn:
        raise UsageError(
            f"import job {state.name} is {state.status}; only a Completed import makes a variant"
        )
    model = bedrock.get_imported_model(modelIdentifier=state.imported_model_arn)
    return Variant(
        name=name,
        target=f"bedrock:{state.imported_model_arn}",
        base_model=model.get("modelArchitecture"),
        method="import",
        import_job_arn=state.arn,
        model_arn=state.imported_model_arn,
        notes=notes,
    )


def converse_problem(bedrock: BedrockClient, imported_model_arn: str) -> str | None:
    """Why the gateway (which calls Converse) cannot use this import, or None.

    GetImportedModel's ``instructSupported`` says whether the model supports Converse; GPT-OSS
    imports never do (custom-model-import-code-samples: InvokeModel with the OpenAI schema only).
    """
    model = bedrock.get_imported_model(modelIdentifier=imported_model_arn)
    architecture = str(model.get("modelArchitecture") or "")
    if model.get("instructSupported") is False or "gpt" in architecture.lower().replace("-", ""):
        return (
            f"imported model {imported_model_arn} ({architecture or 'unknown architecture'}) is "
            "served through InvokeModel only, not Converse; the gateway calls Converse, so "
            "variant:NAME requests to it will fail"
        )
    return None
