"""Custom and imported models: listing them, and deleting one (storage is billed monthly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from customize.errors import UsageError
from customize.serving.provision import IMPORTED_MARKER, serving_for_model

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient

ModelKind = Literal["custom", "imported"]


@dataclass(frozen=True)
class ModelRow:
    kind: ModelKind
    arn: str
    name: str
    base: str | None
    created: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_models(bedrock: BedrockClient, kinds: tuple[ModelKind, ...]) -> list[ModelRow]:
    rows: list[ModelRow] = []
    if "custom" in kinds:
        for page in bedrock.get_paginator("list_custom_models").paginate():
            rows += [
                ModelRow(
                    "custom",
                    item["modelArn"],
                    item["modelName"],
                    item.get("baseModelName") or item.get("baseModelArn"),
                    item.get("creationTime"),
                )
                for item in page.get("modelSummaries", [])
            ]
    if "imported" in kinds:
        for imported in bedrock.get_paginator("list_imported_models").paginate():
            rows += [
                ModelRow(
                    "imported",
                    item["modelArn"],
                    item["modelName"],
                    str(item.get("modelArchitecture") or "") or None,
                    item.get("creationTime"),
                )
                for item in imported.get("modelSummaries", [])
            ]
    return rows


def model_kind(arn: str) -> ModelKind:
    return "imported" if IMPORTED_MARKER in arn else "custom"


def delete_model(bedrock: BedrockClient, arn: str) -> ModelKind:
    """Delete a custom or imported model; refuses while something still serves a custom one."""
    kind = model_kind(arn)
    if kind == "imported":
        bedrock.delete_imported_model(modelIdentifier=arn)
        return kind
    serving = serving_for_model(bedrock, arn)
    if serving is not None:
        what = "deployment" if ":custom-model-deployment/" in serving else "Provisioned Throughput"
        command = "deployments delete" if what == "deployment" else "provision delete"
        raise UsageError(
            f"{arn} is still served by {what} {serving}; delete that first "
            f"(strata customize {command} {serving})"
        )
    bedrock.delete_custom_model(modelIdentifier=arn)
    return kind
