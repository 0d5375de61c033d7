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


def create_provisioned(
    bedrock: BedrockClient, *, model_arn: str, units: int, name: str | None, commitment: str | None
) -> str:
    if units < 1:
        raise UsageError("--units must be at least 1")
    token = request_token(
        {"model": model_arn, "units": units, "name": name, "commitment": commitment}
    )
    request: dict[str, Any] = {
        "modelUnits": units,
        "provisionedModelName": name or resource_name("strata-pt", token),
        "modelId": model_arn,
        "clientRequestToken": token,
    }
    if commitment:
        request["commitmentDuration"] = commitment
    return bedrock.create_provisioned_model_throughput(**request)["provisionedModelArn"]


def get_provisioned(bedrock: BedrockClient, arn: str) -> ServingSnapshot:
    return provisioned_snapshot(bedrock.get_provisioned_model_throughput(provisionedModelId=arn))


def on_demand_family(bedrock: BedrockClient, model_arn: str) -> Family:
    """The custom model's base family, if it can be deployed on demand; raises otherwise."""
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


def create_deployment(bedrock: BedrockClient, *, model_arn: str, name: str | None) -> str:
    token = request_token({"model": model_arn, "name": name, "kind": "deployment"})
    response = bedrock.create_custom_model_deployment(
        modelDeploymentName=name or resource_name("strata-od", token),
        modelArn=model_arn,
        clientRequestToken=token,
    )
    return response["customModelDeploymentArn"]


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
