"""The fake's operations for tearing down and changing what costs money, and listing it.

A mixin of ``FakeBedrock`` (customize_fake_bedrock.py): Update/Delete for Provisioned Throughput
and custom model deployments, List/Delete for imported models, ListModelImportJobs, and
ListCustomModels / DeleteCustomModel for the custom models the fake holds itself (the rest of
ListCustomModels comes from moto, merged in).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from tests.customize.customize_fake_bedrock import FakeState


class NotFound(Exception):
    pass


class ManageOps:
    state: FakeState
    upstream: str | None

    def _find(self, table: dict[str, dict[str, Any]], identifier: str, name_key: str) -> str:
        for arn, item in table.items():
            if identifier in (arn, item.get(name_key)):
                return arn
        raise NotFound(identifier)

    def update_provisioned(
        self, identifier: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        arn = self._find(self.state.provisioned, identifier, "provisionedModelName")
        item = self.state.provisioned[arn]
        if "desiredModelId" in body:
            item.update(desiredModelArn=body["desiredModelId"], modelArn=body["desiredModelId"])
        if "desiredProvisionedModelName" in body:
            item["provisionedModelName"] = body["desiredProvisionedModelName"]
        item["lastModifiedTime"] = time.time()
        return 200, {}

    def delete_provisioned(self, identifier: str) -> tuple[int, dict[str, Any]]:
        arn = self._find(self.state.provisioned, identifier, "provisionedModelName")
        del self.state.provisioned[arn]
        self.state.deleted.append(arn)
        return 200, {}

    def update_deployment(
        self, identifier: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        arn = self._find(self.state.deployments, identifier, "modelDeploymentName")
        self.state.deployments[arn].update(modelArn=body["modelArn"], status="Updating")
        return 202, {"customModelDeploymentArn": arn}

    def delete_deployment(self, identifier: str) -> tuple[int, dict[str, Any]]:
        arn = self._find(self.state.deployments, identifier, "modelDeploymentName")
        del self.state.deployments[arn]
        self.state.deleted.append(arn)
        return 200, {}

    def list_imported_models(self) -> tuple[int, dict[str, Any]]:
        summaries = [
            {
                key: model[key]
                for key in (
                    "modelArn",
                    "modelName",
                    "creationTime",
                    "modelArchitecture",
                    "instructSupported",
                )
            }
            for model in self.state.imported_models.values()
        ]
        return 200, {"modelSummaries": summaries}

    def delete_imported_model(self, identifier: str) -> tuple[int, dict[str, Any]]:
        arn = self._find(self.state.imported_models, identifier, "modelName")
        del self.state.imported_models[arn]
        self.state.deleted.append(arn)
        return 200, {}

    def list_import_jobs(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        jobs = [
            {key: job[key] for key in ("jobArn", "jobName", "status", "creationTime") if key in job}
            | ({"importedModelArn": job["importedModelArn"]} if "importedModelArn" in job else {})
            for job in self.state.import_jobs.values()
            if query.get("statusEquals") in (None, job["status"])
        ]
        return 200, {"modelImportJobSummaries": jobs[::-1]}

    def list_custom_models(self) -> tuple[int, dict[str, Any]]:
        own = [
            {
                "modelArn": model["modelArn"],
                "modelName": model["modelName"],
                "creationTime": model["creationTime"],
                "baseModelArn": model["baseModelArn"],
                "baseModelName": model["baseModelArn"].rsplit("/", 1)[-1],
            }
            for model in self.state.custom_models.values()
        ]
        theirs: list[dict[str, Any]] = []
        if self.upstream is not None:
            moto = boto3.client("bedrock", endpoint_url=self.upstream, region_name="us-east-1")
            for summary in moto.list_custom_models().get("modelSummaries", []):
                summary["creationTime"] = summary["creationTime"].timestamp()
                theirs.append(summary)
        return 200, {"modelSummaries": own + theirs}

    def create_log_job(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """Jobs moto 5.2.5 cannot hold (training data from invocation logs); None: moto's."""
        if "invocationLogsConfig" not in body.get("trainingDataConfig", {}):
            return None
        token = body.get("clientRequestToken")
        for job in self.state.log_jobs.values():
            if token and job["clientRequestToken"] == token:
                return 201, {"jobArn": job["jobArn"]}
        arn = f"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/{body['jobName']}"
        self.state.log_jobs[body["jobName"]] = {
            **body,
            "jobArn": arn,
            "status": "InProgress",
            "creationTime": time.time(),
            "lastModifiedTime": time.time(),
            "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/"
            + body["baseModelIdentifier"],
        }
        return 201, {"jobArn": arn}

    def get_log_job(self, identifier: str) -> tuple[int, dict[str, Any]] | None:
        name = identifier.rsplit("/", 1)[-1]
        return (200, self.state.log_jobs[name]) if name in self.state.log_jobs else None

    def moto_custom_model_path(self, path: str) -> str:
        """moto 5.2.5 names a job's model ``custom-model/MODEL-JOB`` in the job but keys the model
        itself by MODEL; the real service takes either ARN form. Hand moto the key it holds."""
        from urllib.parse import unquote

        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "custom-models" or self.upstream is None:
            return path
        arn = unquote(parts[2])
        moto = boto3.client("bedrock", endpoint_url=self.upstream, region_name="us-east-1")
        for job in moto.list_model_customization_jobs().get("modelCustomizationJobSummaries", []):
            if arn in (job.get("customModelArn"), job.get("customModelName")):
                parts[2] = str(job.get("customModelName"))
                return "/".join(parts)
        parts[2] = arn.rsplit("/", 1)[-1]
        return "/".join(parts)

    def delete_own_custom_model(self, identifier: str) -> tuple[int, dict[str, Any]] | None:
        """The fake's own custom models; None hands the request to moto."""
        if identifier not in self.state.custom_models:
            return None
        del self.state.custom_models[identifier]
        self.state.deleted.append(identifier)
        return 200, {}

    def list_provisioned_model_throughputs(
        self, query: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        summaries = [
            item
            for item in self.state.provisioned.values()
            if query.get("modelArnEquals") in (None, item["modelArn"])
            and query.get("statusEquals") in (None, item["status"])
        ]
        return 200, {"provisionedModelSummaries": summaries}

    def list_custom_model_deployments(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        summaries = [
            {
                "customModelDeploymentArn": item["customModelDeploymentArn"],
                "customModelDeploymentName": item["modelDeploymentName"],
                "modelArn": item["modelArn"],
                "createdAt": item["createdAt"],
                "status": item["status"],
            }
            for item in self.state.deployments.values()
            if query.get("modelArnEquals") in (None, item["modelArn"])
            and query.get("statusEquals") in (None, item["status"])
        ]
        return 200, {"modelDeploymentSummaries": summaries}
