"""``customize status | list | stop``: Bedrock model customization jobs (submit: submit_cmd)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from customize.aws import AwsContext
from customize.catalog import model_id_of
from customize.commands.common import (
    JsonOut,
    PollInterval,
    Profile,
    Region,
    Wait,
    emit_json,
    finish,
    out,
    reported_errors,
    wait_and_show,
)
from customize.jobs.follow import JobSnapshot, job_rows, snapshot

Job = Annotated[str, typer.Argument(help="Job ARN or name.")]
# FineTuningJobStatus in botocore's bedrock model (a test holds this list to it); spelled out here
# so that building the CLI imports no AWS SDK.
JobStatus = Literal["InProgress", "Completed", "Failed", "Stopping", "Stopped"]


def follow_job(aws: AwsContext, job: str, interval: float, as_json: bool) -> JobSnapshot:
    fetch = lambda: snapshot(aws.bedrock.get_model_customization_job(jobIdentifier=job))  # noqa: E731
    return wait_and_show(
        fetch, title="Bedrock customization job", rows=job_rows, interval=interval, as_json=as_json
    )


RETRY_HINT = "run the same submit again with --retry (or --name NEW_NAME) to start it over"


def failure_line(state: JobSnapshot) -> str | None:
    if state.status == "Failed":
        reason = state.failure_message or "no failure message given"
        return f"job {state.name} failed: {reason}; {RETRY_HINT}"
    if state.status == "Stopped":
        return f"job {state.name} was stopped before it finished; {RETRY_HINT}"
    return None


def _print_job(state: JobSnapshot) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("Job", f"{state.name} ({state.arn})")
    table.add_row("Status", state.status)
    for label, value in state.steps:
        table.add_row(label, value)
    table.add_row("Base model", model_id_of(state.base_model_arn or "-"))
    table.add_row("Type", state.customization_type or "-")
    table.add_row("Custom model", state.output_model_arn or "-")
    if state.training_loss is not None:
        table.add_row("Training loss", f"{state.training_loss:.4f}")
    if state.validation_loss is not None:
        table.add_row("Validation loss", f"{state.validation_loss:.4f}")
    if state.failure_message:
        table.add_row("Failure", state.failure_message)
    out().print(table)


def status(
    job: Job,
    wait: Wait = False,
    poll_interval: PollInterval = 60.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Show a customization job's status; --wait follows it until it ends (exit 1 if it fails)."""
    with reported_errors(as_json):
        aws = AwsContext(region, profile)
        if wait:
            state = follow_job(aws, job, poll_interval, as_json)
        else:
            state = snapshot(aws.bedrock.get_model_customization_job(jobIdentifier=job))
        if not as_json:
            _print_job(state)
        finish({"ok": True, "job": state.as_dict()}, failure_line(state) if wait else None, as_json)


def list_jobs(
    status_equals: Annotated[
        JobStatus | None,
        typer.Option("--status", case_sensitive=False, help="Only jobs in this status."),
    ] = None,
    name_contains: Annotated[
        str | None, typer.Option("--name-contains", help="Only jobs whose name contains this.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most this many jobs, newest first.")
    ] = 50,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """List customization jobs, newest first."""
    with reported_errors(as_json):
        aws = AwsContext(region, profile)
        request: dict[str, Any] = {
            "sortBy": "CreationTime",
            "sortOrder": "Descending",
            "maxResults": min(limit, 100),
        }
        if status_equals:
            request["statusEquals"] = status_equals
        if name_contains:
            request["nameContains"] = name_contains
        jobs: list[dict[str, Any]] = []
        for page in aws.bedrock.get_paginator("list_model_customization_jobs").paginate(**request):
            jobs += [dict(summary) for summary in page.get("modelCustomizationJobSummaries", [])]
            if len(jobs) >= limit:
                break
        jobs = jobs[:limit]
        if as_json:
            emit_json({"ok": True, "jobs": jobs})
            return
        table = Table("Name", "Status", "Type", "Base model", "Created", "Custom model")
        for column in table.columns:
            column.overflow = "fold"  # ARNs are for copying: wrap them, never cut them
        for job in jobs:
            created = job.get("creationTime")
            table.add_row(
                job.get("jobName", ""),
                job.get("status", ""),
                job.get("customizationType", "-"),
                model_id_of(job.get("baseModelArn", "-")),
                created.strftime("%Y-%m-%d %H:%M") if created else "-",
                job.get("customModelArn", "-"),
            )
        out().print(table)


def stop(
    job: Job, region: Region = None, profile: Profile = None, as_json: JsonOut = False
) -> None:
    """Ask Bedrock to stop a running customization job."""
    with reported_errors(as_json):
        aws = AwsContext(region, profile)
        aws.bedrock.stop_model_customization_job(jobIdentifier=job)
        state = snapshot(aws.bedrock.get_model_customization_job(jobIdentifier=job))
        if as_json:
            emit_json({"ok": True, "job": state.as_dict()})
        else:
            out().print(f"stop requested for {state.name}: status {state.status}")
