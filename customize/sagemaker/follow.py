"""Following a training job: status, secondary-status transitions, metrics, log tail, cost.

Metrics come from the job's own log lines, parsed with the job's own ``MetricDefinitions`` (the
same regexes SageMaker applies), so what ``strata train status`` shows is what SageMaker records.
Cost so far is instance-hours x the on-demand price in instances.json (an estimate: spot jobs
are billed less, and the final bill uses ``BillableTimeInSeconds``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from customize.progress import Rows, elapsed_since
from customize.sagemaker.images import instance_types

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@dataclass(frozen=True)
class Transition:
    status: str
    message: str
    start: datetime | None


@dataclass
class JobSnapshot:
    name: str
    arn: str
    status: str
    secondary: str
    transitions: list[Transition]
    instance_type: str
    instance_count: int
    spot: bool
    created: datetime | None
    started: datetime | None
    ended: datetime | None
    billable_seconds: int | None
    failure: str | None
    metric_definitions: list[dict[str, str]]
    artifacts: str | None
    output_path: str
    hyperparameters: dict[str, str]
    tuning_job: str | None = None
    image: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    log_tail: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def model_prefix(self) -> str:
        """Where an uncompressed job's model folder lands: OUTPUT/JOB/output/model/."""
        return f"{self.output_path.rstrip('/')}/{self.name}/output/model/"

    def cost_usd(self, now: datetime) -> float | None:
        spec = instance_types().get(self.instance_type)
        if spec is None or self.started is None:
            return None
        if self.billable_seconds is not None and self.done:
            # Billable time is wall-clock per instance (spot: the time actually billed).
            seconds = float(self.billable_seconds) * self.instance_count
        else:
            start = self.started if self.started.tzinfo else self.started.replace(tzinfo=UTC)
            stop = self.ended or now
            stop = stop if stop.tzinfo else stop.replace(tzinfo=UTC)
            seconds = max(0.0, (stop - start).total_seconds()) * self.instance_count
        return seconds / 3600 * spec.usd_per_hour

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "status": self.status,
            "secondary_status": self.secondary,
            "transitions": [t.__dict__ for t in self.transitions],
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "spot": self.spot,
            "billable_seconds": self.billable_seconds,
            "failure_reason": self.failure,
            "metrics": self.metrics,
            "model_prefix": self.model_prefix,
            "tuning_job": self.tuning_job,
        }


def snapshot(response: Mapping[str, Any]) -> JobSnapshot:
    resources = response.get("ResourceConfig", {})
    return JobSnapshot(
        name=str(response["TrainingJobName"]),
        arn=str(response["TrainingJobArn"]),
        status=str(response.get("TrainingJobStatus", "Unknown")),
        secondary=str(response.get("SecondaryStatus", "")),
        transitions=[
            Transition(str(t.get("Status")), str(t.get("StatusMessage", "")), t.get("StartTime"))
            for t in response.get("SecondaryStatusTransitions", [])
        ],
        instance_type=str(resources.get("InstanceType", "")),
        instance_count=int(resources.get("InstanceCount", 1)),
        spot=bool(response.get("EnableManagedSpotTraining", False)),
        created=response.get("CreationTime"),
        started=response.get("TrainingStartTime"),
        ended=response.get("TrainingEndTime"),
        billable_seconds=response.get("BillableTimeInSeconds"),
        failure=response.get("FailureReason"),
        metric_definitions=list(
            response.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
        ),
        artifacts=response.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
        output_path=str(response.get("OutputDataConfig", {}).get("S3OutputPath", "")),
        hyperparameters=dict(response.get("HyperParameters", {})),
        tuning_job=response.get("TuningJobArn"),
        image=str(response.get("AlgorithmSpecification", {}).get("TrainingImage", "")),
    )


def parse_metrics(
    lines: Sequence[str], definitions: Sequence[Mapping[str, str]]
) -> dict[str, float]:
    """The last value each metric definition matched in ``lines``."""
    found: dict[str, float] = {}
    compiled = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
    for line in lines:
        for name, pattern in compiled:
            match = pattern.search(line)
            if match:
                try:
                    found[name] = float(match.group(1))
                except (IndexError, ValueError):
                    continue
    return found


class LogTail:
    """New lines of a job's CloudWatch log streams, one ``get_log_events`` page at a time."""

    def __init__(self, logs: CloudWatchLogsClient, job: str) -> None:
        self._logs = logs
        self._job = job
        self._tokens: dict[str, str] = {}
        self.lines: list[str] = []

    def poll(self) -> list[str]:
        from botocore.exceptions import ClientError

        try:
            streams = self._logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self._job}/"
            ).get("logStreams", [])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return []  # the job has not written a line yet
            raise
        new: list[str] = []
        for stream in sorted(s["logStreamName"] for s in streams):
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": LOG_GROUP,
                    "logStreamName": stream,
                    "startFromHead": True,
                }
                if stream in self._tokens:
                    kwargs["nextToken"] = self._tokens[stream]
                page = self._logs.get_log_events(**kwargs)
                events = page.get("events", [])
                new.extend(str(e.get("message", "")) for e in events)
                token = page.get("nextForwardToken")
                if token:
                    self._tokens[stream] = token
                if not events or not token:
                    break
        self.lines.extend(new)
        return new


def describe(sagemaker: Any, job: str, tail: LogTail | None = None) -> JobSnapshot:
    name = job.rsplit("/", 1)[-1]  # an ARN ends in training-job/NAME
    state = snapshot(sagemaker.describe_training_job(TrainingJobName=name))
    if tail is not None:
        tail.poll()
        state.metrics = parse_metrics(tail.lines, state.metric_definitions)
        state.log_tail = tail.lines[-5:]
    return state


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def job_rows(state: JobSnapshot, now: datetime) -> Rows:
    rows: list[tuple[str, str]] = [
        ("Training job", state.name),
        ("Status", f"{state.status} / {state.secondary}" if state.secondary else state.status),
        (
            "Instances",
            f"{state.instance_count} x {state.instance_type}" + (" (spot)" if state.spot else ""),
        ),
        ("Elapsed", elapsed_since(state.created, state.ended if state.done else None, now)),
        ("Cost so far", _money(state.cost_usd(now)) + " (on-demand estimate)"),
    ]
    if state.transitions:
        rows.append(("Steps", " → ".join(t.status for t in state.transitions)))
    for name in ("loss", "eval_loss", "tokens_per_s"):
        if name in state.metrics:
            rows.append((name, f"{state.metrics[name]:.4g}"))
    if state.failure:
        rows.append(("Failure", state.failure))
    return rows
