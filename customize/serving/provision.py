"""Provisioned Throughput and on-demand deployments for custom models, and waiting on them.

Both creations carry a client request token derived from their inputs, so running the command
twice returns the resource the first run created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from customize.catalog import Family, family_for_model
from customize.errors import UsageError
from customize.progress import Rows, elapsed_since
from customize.shapes import check_request
from customize.tokens import request_token, resource_name

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient

Kind = Literal["provisioned", "deployment"]
DONE: dict[Kind, frozenset[str]] = {
    "provisioned": frozenset({"InService", "Failed"}),
    "deployment": frozenset({"Active", "Failed"}),
}
READY: dict[Kind, str] = {"provisioned": "InService", "deployment": "Active"}


@dataclass(frozen=True)
class ServingSnapshot:
    kind: Kind
    arn: str
    name: str
    status: str
    model_arn: str
    units: int | None
    failure_message: str | None
    created: datetime | None

    @property
    def done(self) -> bool:
        return self.status in DONE[self.kind]

    @property
    def ready(self) -> bool:
        return self.status == READY[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def provisioned_snapshot(response: Mapping[str, Any]) -> ServingSnapshot:
    return ServingSnapshot(
        kind="provisioned",
        arn=str(response["provisionedModelArn"]),
        name=str(response.get("provisionedModelName", "")),
        status=str(response.get("status", "Unknown")),
        model_arn=str(response.get("modelArn", "")),
        units=response.get("modelUnits"),
        failure_message=response.get("failureMessage"),
        created=response.get("creationTime"),
    )


def deployment_snapshot(response: Mapping[str, Any]) -> ServingSnapshot:
    return ServingSnapshot(
        kind="deployment",
        arn=str(response["customModelDeploymentArn"]),
        name=str(response.get("modelDeploymentName", "")),
        status=str(response.get("status", "Unknown")),
        model_arn=str(response.get("modelArn", "")),
        units=None,
        failure_message=response.get("failureMessage"),
        created=response.get("createdAt"),
    )


def serving_rows(state: ServingSnapshot, now: datetime) -> Rows:
    rows = [("Name", state.name), ("Status", state.status)]
    if state.units is not None:
        rows.append(("Model units", str(state.units)))
    rows.append(("Elapsed", elapsed_since(state.created, None, now)))
    return rows


IMPORTED_MARKER = ":imported-model/"


def refuse_imported(model_arn: str) -> None:
    """Imported models need no serving resource: Bedrock runs them on demand (billed per CMU per
    5-minute window while a copy is active; model-customization-import-model)."""
    if IMPORTED_MARKER in model_arn:
        raise UsageError(
            f"{model_arn} is an imported model: Bedrock serves imported models on demand, so no "
            f"Provisioned Throughput or deployment is needed; invoke it with modelId {model_arn} "
            f"(a variant: strata variants add NAME --target bedrock:{model_arn})"
        )


def _tags(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in (tags or {}).items()]


def create_provisioned(
    bedrock: BedrockClient,
    *,
    model_arn: str,
    units: int,
    name: str | None,
    commitment: str | None,
    tags: dict[str, str] | None = None,
) -> str:
    refuse_imported(model_arn)
    if units < 1:
        raise UsageError("--units must be at least 1")
    token = request_token(
        {"model": model_arn, "units": units, "name": name, "commitment": commitment, "tags": tags}
    )
    request: dict[str, Any] = {
        "modelUnits": units,
        "provisionedModelName": name or resource_name("strata-pt", token),
        "modelId": model_arn,
        "clientRequestToken": token,
    }
    if commitment:
        request["commitmentDuration"] = commitment
    if tags:
        request["tags"] = _tags(tags)
    check_request("bedrock", "CreateProvisionedModelThroughput", request)
    return bedrock.create_provisioned_model_throughput(**request)["provisionedModelArn"]


def update_provisioned(
    bedrock: BedrockClient, arn: str, *, name: str | None, model_arn: str | None
) -> None:
    request: dict[str, Any] = {"provisionedModelId": arn}
    if name:
        request["desiredProvisionedModelName"] = name
    if model_arn:
        refuse_imported(model_arn)
        request["desiredModelId"] = model_arn
    if len(request) == 1:
        raise UsageError("pass --name and/or --model to change")
    check_request("bedrock", "UpdateProvisionedModelThroughput", request)
    bedrock.update_provisioned_model_throughput(**request)


def delete_provisioned(bedrock: BedrockClient, arn: str) -> None:
    bedrock.delete_provisioned_model_throughput(provisionedModelId=arn)


def list_provisioned(bedrock: BedrockClient) -> list[ServingSnapshot]:
    summaries = bedrock.list_provisioned_model_throughputs().get("provisionedModelSummaries", [])
    return [provisioned_snapshot(summary) for summary in summaries]


def list_deployments(bedrock: BedrockClient) -> list[ServingSnapshot]:
    found = bedrock.list_custom_model_deployments().get("modelDeploymentSummaries", [])
    return [
        deployment_snapshot(
            {**item, "modelDeploymentName": item.get("customModelDeploymentName", "")}
        )
        for item in found
    ]


def delete_deployment(bedrock: BedrockClient, arn: str) -> None:
    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)


def update_deployment(bedrock: BedrockClient, arn: str, model_arn: str) -> None:
    request = {"customModelDeploymentIdentifier": arn, "modelArn": model_arn}
    check_request("bedrock", "UpdateCustomModelDeployment", request)
    bedrock.update_custom_model_deployment(**request)


def get_provisioned(bedrock: BedrockClient, arn: str) -> ServingSnapshot:
    return provisioned_snapshot(bedrock.get_provisioned_model_throughput(provisionedModelId=arn))


def base_family(bedrock: BedrockClient, model_arn: str) -> Family | None:
    """The custom model's base family, or None when Bedrock or our catalog cannot say."""
    from botocore.exceptions import ClientError

    try:
        base = bedrock.get_custom_model(modelIdentifier=model_arn).get("baseModelArn")
        return family_for_model(base) if base else None
    except (UsageError, ClientError):
        return None


def on_demand_family(bedrock: BedrockClient, model_arn: str) -> Family:
    """The custom model's base family, if it can be deployed on demand; raises otherwise."""
    refuse_imported(model_arn)
    model = bedrock.get_custom_model(modelIdentifier=model_arn)
    base = model.get("baseModelArn")
    if not base:
        raise UsageError(
            f"{model_arn} has no base model recorded; use --units for Provisioned Throughput"
        )
    family = family_for_model(base)
    if not family.on_demand_deployment:
        raise UsageError(
            f"{family.display} custom models cannot be deployed on demand; "
            "use --units N for Provisioned Throughput"
        )
    return family


def create_deployment(
    bedrock: BedrockClient,
    *,
    model_arn: str,
    name: str | None,
    tags: dict[str, str] | None = None,
) -> str:
    token = request_token({"model": model_arn, "name": name, "kind": "deployment", "tags": tags})
    request: dict[str, Any] = {
        "modelDeploymentName": name or resource_name("strata-od", token),
        "modelArn": model_arn,
        "clientRequestToken": token,
    }
    if tags:
        request["tags"] = _tags(tags)
    check_request("bedrock", "CreateCustomModelDeployment", request)
    return bedrock.create_custom_model_deployment(**request)["customModelDeploymentArn"]


def get_deployment(bedrock: BedrockClient, arn: str) -> ServingSnapshot:
    return deployment_snapshot(
        bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    )


def serving_for_model(bedrock: BedrockClient, model_arn: str) -> str | None:
    """The ARN that serves ``model_arn`` now: an InService Provisioned Throughput, else an Active
    on-demand deployment, else None."""
    provisioned = bedrock.list_provisioned_model_throughputs(
        modelArnEquals=model_arn, statusEquals="InService"
    )
    for summary in provisioned.get("provisionedModelSummaries", []):
        return summary["provisionedModelArn"]
    deployments = bedrock.list_custom_model_deployments(
        modelArnEquals=model_arn, statusEquals="Active"
    )
    for deployment in deployments.get("modelDeploymentSummaries", []):
        return deployment["customModelDeploymentArn"]
    return None
