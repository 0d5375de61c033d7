"""``strata train status|stop|list``: SageMaker training jobs started by Strata (or any job)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from customize.aws import AwsContext
from customize.commands.common import (
    JsonOut,
    PollInterval,
    Profile,
    Region,
    emit_json,
    out,
    reported_errors,
)
from customize.sagemaker import clients
from customize.sagemaker.follow import describe, job_rows
from customize.sagemaker.launch import follow
from customize.sagemaker.options import RemoteOptions

Job = Annotated[str, typer.Argument(help="Training job name or ARN.")]


def status(
    job: Job,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it ends.")] = False,
    logs: Annotated[bool, typer.Option("--logs", help="Print the job's log lines.")] = False,
    poll_interval: PollInterval = 30.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Status, secondary-status steps, metrics from the log and cost so far of a training job."""
    from datetime import UTC, datetime

    from customize.sagemaker.follow import LogTail

    with reported_errors(as_json):
        aws = AwsContext(region, profile)
        sagemaker = clients.sagemaker(aws)
        name = job.rsplit("/", 1)[-1]
        if wait:
            remote = RemoteOptions(logs=logs, poll_interval=poll_interval, as_json=as_json)
            state = follow(aws, sagemaker, name, remote)
        else:
            tail = LogTail(clients.logs(aws), name)
            state = describe(sagemaker, name, tail)
            if logs and not as_json:
                for line in tail.lines:
                    out().print(line, markup=False)
        if as_json:
            emit_json({"ok": True, "job": state.as_dict()})
            return
        for label, value in job_rows(state, datetime.now(UTC)):
            out().print(f"{label}: {value}")


def stop(
    job: Job, region: Region = None, profile: Profile = None, as_json: JsonOut = False
) -> None:
    """Stop a running training job (SageMaker uploads what the job saved so far)."""
    with reported_errors(as_json):
        sagemaker = clients.sagemaker(AwsContext(region, profile))
        name = job.rsplit("/", 1)[-1]
        sagemaker.stop_training_job(TrainingJobName=name)
        if as_json:
            emit_json({"ok": True, "stopping": name})
        else:
            out().print(f"stopping {name}")


def list_jobs(
    name_contains: Annotated[
        str, typer.Option("--name-contains", help="Only jobs whose name contains this.")
    ] = "strata-",
    max_results: Annotated[int, typer.Option("--max", min=1, max=100)] = 20,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """List recent training jobs (Strata's by default)."""
    with reported_errors(as_json):
        sagemaker = clients.sagemaker(AwsContext(region, profile))
        jobs = sagemaker.list_training_jobs(
            NameContains=name_contains,
            MaxResults=max_results,
            SortBy="CreationTime",
            SortOrder="Descending",
        ).get("TrainingJobSummaries", [])
        if as_json:
            emit_json({"ok": True, "jobs": jobs})
            return
        table = Table("Name", "Status", "Created")
        for item in jobs:
            table.add_row(
                str(item["TrainingJobName"]),
                str(item["TrainingJobStatus"]),
                str(item["CreationTime"]),
            )
        out().print(table)


def register_job(
    job: Job,
    task: Annotated[
        str | None, typer.Option("--task", help="Task name (default: the one the job recorded).")
    ] = None,
    approval: Annotated[
        str, typer.Option("--approval", help="PendingManualApproval, Approved or Rejected.")
    ] = "PendingManualApproval",
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Register a Completed training job in the SageMaker Model Registry (``--no-wait`` runs)."""
    from customize.sagemaker.follow import LogTail
    from customize.sagemaker.registry import register

    with reported_errors(as_json):
        aws = AwsContext(region, profile)
        sagemaker = clients.sagemaker(aws)
        name = job.rsplit("/", 1)[-1]
        state = describe(sagemaker, name, LogTail(clients.logs(aws), name))
        registered = register(sagemaker, state, task=task, approval=approval)
        if as_json:
            emit_json({"ok": True, "model_package": registered.__dict__})
        else:
            out().print(f"{registered.package_arn} ({registered.group}, {registered.approval})")
