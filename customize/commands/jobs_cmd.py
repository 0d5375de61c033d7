"""``customize submit | status | list | stop``: Bedrock model customization jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from customize.aws import AwsContext
from customize.catalog import model_id_of
from customize.commands.common import (
    JsonOut,
    PollInterval,
    Profile,
    Region,
    emit_json,
    finish,
    note,
    out,
    reported_errors,
    wait_and_show,
)
from customize.commands.datasets_cmd import FamilyOpt, Kind, customization_type, resolve_family
from customize.datasets.formats import dataset_spec
from customize.datasets.validate import DatasetScan
from customize.errors import DatasetError, UsageError
from customize.jobs.follow import JobSnapshot, job_rows, snapshot
from customize.jobs.hyperparams import parse_assignments, validate_hyperparameters
from customize.jobs.submit import DataSource, JobInputs, plan_job, submit_job
from customize.s3 import parse_s3_uri

Job = Annotated[str, typer.Argument(help="Job ARN or name.")]
Wait = Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the job until it ends.")]


def _data_source(value: str, option: str) -> DataSource:
    if value.startswith("s3://"):
        return parse_s3_uri(value)
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"{option} {value!r} is neither an s3:// URI nor a readable file")
    return path


def _check_local_data(source: DataSource | None, which: str, inputs_spec: Any) -> None:
    if not isinstance(source, Path):
        return
    scan = DatasetScan(source, inputs_spec)
    problems = iter(scan)
    first = [str(problem) for _, problem in zip(range(3), problems, strict=False)]
    for _ in problems:  # finish the scan so the count covers the whole file
        pass
    if first:
        more = (
            f" (+{scan.stats.problems - len(first)} more)"
            if scan.stats.problems > len(first)
            else ""
        )
        raise DatasetError(
            f"{which} data {source.name} is not valid: {'; '.join(first)}{more}; "
            "see `strata customize validate`"
        )


def follow_job(aws: AwsContext, job: str, interval: float, as_json: bool) -> JobSnapshot:
    fetch = lambda: snapshot(aws.bedrock.get_model_customization_job(jobIdentifier=job))  # noqa: E731
    return wait_and_show(
        fetch, title="Bedrock customization job", rows=job_rows, interval=interval, as_json=as_json
    )


def failure_line(state: JobSnapshot) -> str | None:
    if state.status == "Failed":
        return f"job {state.name} failed: {state.failure_message or 'no failure message given'}"
    if state.status == "Stopped":
        return f"job {state.name} was stopped before it finished"
    return None


def submit(
    base: Annotated[str, typer.Option("--base", help="Base model id or ARN to customize.")],
    data: Annotated[
        str, typer.Option("--data", help="Training JSONL: a local file (uploaded) or an s3:// URI.")
    ],
    output: Annotated[
        str, typer.Option("--output", help="s3:// prefix for the job's output (and uploaded data).")
    ],
    role_arn: Annotated[
        str,
        typer.Option("--role-arn", help="IAM role Bedrock assumes to read data and write output."),
    ],
    validation: Annotated[
        str | None, typer.Option("--validation", help="Validation JSONL: local file or s3:// URI.")
    ] = None,
    kind: Kind = "FINE_TUNING",
    hp: Annotated[
        list[str] | None, typer.Option("--hp", help="Hyper-parameter name=value (repeatable).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Job name (default: derived from the inputs).")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option("--model-name", help="Custom model name (default: JOB-model).")
    ] = None,
    teacher: Annotated[
        str | None, typer.Option("--teacher", help="Teacher model id, for DISTILLATION.")
    ] = None,
    data_prefix: Annotated[
        str | None,
        typer.Option(
            "--data-prefix", help="s3:// prefix for uploaded data (default: OUTPUT/data)."
        ),
    ] = None,
    family: FamilyOpt = None,
    wait: Wait = False,
    poll_interval: PollInterval = 60.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Validate data and hyper-parameters, upload the data, start a Bedrock customization job."""
    with reported_errors(as_json):
        chosen = resolve_family(base, family)
        assert chosen is not None  # --base is required
        job_type = customization_type(kind)
        spec = dataset_spec(chosen, job_type)
        hyperparameters = validate_hyperparameters(chosen.name, parse_assignments(hp or []))
        training = _data_source(data, "--data")
        validation_source = _data_source(validation, "--validation") if validation else None
        _check_local_data(training, "training", spec)
        _check_local_data(validation_source, "validation", spec)
        inputs = JobInputs(
            base_model=base,
            family=chosen,
            customization_type=job_type,
            training=training,
            validation=validation_source,
            output=parse_s3_uri(output),
            role_arn=role_arn,
            hyperparameters=hyperparameters,
            job_name=name,
            model_name=model_name,
            teacher=teacher,
            data_prefix=parse_s3_uri(data_prefix) if data_prefix else None,
        )
        plan = plan_job(inputs)
        aws = AwsContext(region, profile)
        result = submit_job(aws, plan, on_step=lambda step: note(step, as_json=as_json))
        for message in result.notes:
            note(message, as_json=as_json)
        payload: dict[str, Any] = {
            "ok": True,
            "job_arn": result.job_arn,
            "job_name": result.job_name,
            "custom_model_name": result.model_name,
            "client_request_token": result.token,
            "already_submitted": result.reused,
            "uploads": list(result.uploads),
            "hyperparameters": hyperparameters,
        }
        if not as_json:
            for upload in result.uploads:
                verb = (
                    "already in S3, skipped"
                    if upload["skipped"]
                    else f"uploaded {upload['bytes']:,} bytes"
                )
                note(f"{upload['data']} data: {verb} ({upload['uri']})", as_json=False)
            prefix = "already submitted: " if result.reused else ""
            out().print(f"{prefix}{result.job_arn}")
        failure = None
        if wait:
            state = follow_job(aws, result.job_arn, poll_interval, as_json)
            payload["job"] = state.as_dict()
            failure = failure_line(state)
            if not as_json and failure is None:
                out().print(f"custom model: {state.output_model_arn}")
        finish(payload, failure, as_json)


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
        str | None, typer.Option("--status", help="Only jobs in this status.")
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
