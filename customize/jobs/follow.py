"""What a customization job looks like while it runs: a snapshot of GetModelCustomizationJob."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from customize.progress import Rows, elapsed_since

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
STEPS = (
    ("validationDetails", "Validation"),
    ("dataProcessingDetails", "Data processing"),
    ("trainingDetails", "Training"),
)


@dataclass(frozen=True)
class JobSnapshot:
    arn: str
    name: str
    status: str
    steps: tuple[tuple[str, str], ...]
    training_loss: float | None
    validation_loss: float | None
    failure_message: str | None
    output_model_arn: str | None
    output_model_name: str | None
    base_model_arn: str | None
    customization_type: str | None
    hyperparameters: dict[str, str]
    training_data_uri: str | None
    created: datetime | None
    ended: datetime | None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = dict(self.steps)
        return data


def _last_validation_loss(metrics: object) -> float | None:
    if isinstance(metrics, list) and metrics and isinstance(metrics[-1], Mapping):
        value = metrics[-1].get("validationLoss")
        return float(value) if isinstance(value, int | float) else None
    return None


def snapshot(response: Mapping[str, Any]) -> JobSnapshot:
    status = str(response.get("status", "Unknown"))
    details = response.get("statusDetails") or {}
    steps = tuple(
        (label, str(details[key].get("status", "-")))
        for key, label in STEPS
        if isinstance(details.get(key), Mapping)
    )
    training = response.get("trainingMetrics") or {}
    training_loss = training.get("trainingLoss")
    return JobSnapshot(
        arn=str(response["jobArn"]),
        name=str(response.get("jobName", "")),
        status=status,
        steps=steps,
        training_loss=float(training_loss) if isinstance(training_loss, int | float) else None,
        validation_loss=_last_validation_loss(response.get("validationMetrics")),
        # Some services fill failureMessage on running jobs; it means something only on failure.
        failure_message=response.get("failureMessage") if status == "Failed" else None,
        output_model_arn=response.get("outputModelArn"),
        output_model_name=response.get("outputModelName"),
        base_model_arn=response.get("baseModelArn"),
        customization_type=response.get("customizationType"),
        hyperparameters=dict(response.get("hyperParameters") or {}),
        training_data_uri=(response.get("trainingDataConfig") or {}).get("s3Uri"),
        created=response.get("creationTime"),
        ended=response.get("endTime") if status in TERMINAL else None,
    )


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def job_rows(job: JobSnapshot, now: datetime) -> Rows:
    rows = [("Job", job.name), ("Status", job.status)]
    rows += list(job.steps)
    rows.append(("Elapsed", elapsed_since(job.created, job.ended, now)))
    if job.training_loss is not None or job.validation_loss is not None:
        rows += [
            ("Training loss", _loss(job.training_loss)),
            ("Validation loss", _loss(job.validation_loss)),
        ]
    return rows
