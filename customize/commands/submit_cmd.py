"""``customize submit`` and ``customize estimate``: check everything, say what it costs, start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from customize.catalog import Family, hyperparameter_tables
from customize.commands.common import (
    JsonOut,
    KmsKey,
    PollInterval,
    Profile,
    Region,
    SecurityGroups,
    Subnets,
    Tags,
    Wait,
    finish,
    note,
    out,
    reported_errors,
)
from customize.commands.datasets_cmd import FamilyOpt, Kind, customization_type, resolve_family
from customize.costs import Estimate, training_estimate
from customize.datasets.formats import dataset_spec
from customize.errors import UsageError
from customize.jobs.hyperparams import (
    parse_assignments,
    rft_hyperparameters,
    validate_hyperparameters,
)
from customize.jobs.preflight import (
    DataSummary,
    check_dataset,
    check_log_source,
    check_record_total,
    check_teacher,
)
from customize.jobs.submit import DataSource, InvocationLogs, JobInputs, plan_job, submit_job
from customize.s3 import S3Location, parse_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Base = Annotated[str, typer.Option("--base", help="Base model id or ARN to customize.")]
Data = Annotated[
    str | None,
    typer.Option("--data", help="Training JSONL: a local file (uploaded) or an s3:// URI."),
]
Validation = Annotated[
    list[str] | None,
    typer.Option("--validation", help="Validation JSONL, local or s3:// (repeatable, up to 10)."),
]
Hp = Annotated[
    list[str] | None, typer.Option("--hp", help="Hyper-parameter name=value (repeatable).")
]
Teacher = Annotated[
    str | None, typer.Option("--teacher", help="Teacher model id, for DISTILLATION.")
]
Logs = Annotated[
    str | None,
    typer.Option(
        "--invocation-logs",
        help="s3:// prefix of Bedrock invocation logs to take prompts from (instead of --data).",
    ),
]
DataPrefix = Annotated[
    str | None,
    typer.Option("--data-prefix", help="s3:// prefix for uploaded data (default: OUTPUT/data)."),
]


def data_source(value: str, option: str) -> DataSource:
    if value.startswith("s3://"):
        return parse_s3_uri(value)
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"{option} {value!r} is neither an s3:// URI nor a readable file")
    return path


def parse_tags(items: list[str] | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tag {item!r} must look like KEY=VALUE")
        tags[key.strip()] = value.strip()
    return tags


@dataclass(frozen=True)
class Checked:
    """A job's inputs after every offline and S3 check, with what it will cost."""

    family: Family
    job_type: str
    hyperparameters: dict[str, str]
    rft: dict[str, Any]
    training: DataSource | InvocationLogs
    validation: tuple[DataSource, ...]
    summaries: tuple[DataSummary, ...]
    estimate: Estimate


def _epochs(family: Family, hyperparameters: dict[str, str], rft: dict[str, Any]) -> int:
    if "epochCount" in rft:
        return int(rft["epochCount"])
    if "epochCount" in hyperparameters:
        return int(hyperparameters["epochCount"])
    spec = hyperparameter_tables().get(family.hp_table, None)
    default = (
        spec.parameters["epochCount"].default if spec and "epochCount" in spec.parameters else 1
    )
    return int(default)


def check_inputs(
    *,
    base: str,
    family_name: str | None,
    kind: str,
    data: str | None,
    validation: list[str] | None,
    hp: list[str] | None,
    teacher: str | None,
    logs: str | None,
    media_bucket: Callable[[], str | None],
    use_log_responses: bool,
    s3: Callable[[], S3Client],
) -> Checked:
    chosen = resolve_family(base, family_name)
    assert chosen is not None  # --base is required
    job_type = customization_type(kind)
    assignments = parse_assignments(hp or [])
    rft: dict[str, Any] = {}
    hyperparameters: dict[str, str] = {}
    if job_type == "REINFORCEMENT_FINE_TUNING":
        rft = rft_hyperparameters(assignments)
    else:
        hyperparameters = validate_hyperparameters(chosen.hp_table, assignments)
    batch = int(hyperparameters["batchSize"]) if "batchSize" in hyperparameters else None
    spec = dataset_spec(chosen, job_type, batch_size=batch)
    if job_type == "DISTILLATION" and teacher:
        check_teacher(chosen, teacher)
    if (data is None) == (logs is None):
        raise UsageError(
            "pass exactly one of --data FILE_OR_S3_URI and --invocation-logs S3_PREFIX"
        )
    training: DataSource | InvocationLogs
    summaries: list[DataSummary] = []
    if logs is not None:
        if job_type not in ("DISTILLATION", "REINFORCEMENT_FINE_TUNING"):
            raise UsageError("--invocation-logs is for DISTILLATION or REINFORCEMENT_FINE_TUNING")
        location = parse_s3_uri(logs)
        check_log_source(s3(), location)
        training = InvocationLogs(location, use_log_responses)
    else:
        assert data is not None
        training = data_source(data, "--data")
        bucket = training.bucket if isinstance(training, S3Location) else media_bucket()
        summaries.append(
            check_dataset(training, "training", "training", spec, media_bucket=bucket, s3=s3)
        )
    sources = tuple(data_source(value, "--validation") for value in validation or [])
    for index, source in enumerate(sources):
        bucket = source.bucket if isinstance(source, S3Location) else media_bucket()
        which = "validation" if len(sources) == 1 else f"validation {index + 1}"
        summaries.append(
            check_dataset(source, which, "validation", spec, media_bucket=bucket, s3=s3)
        )
    check_record_total(spec, summaries)
    tokens = summaries[0].estimated_tokens if summaries and logs is None else None
    estimate = training_estimate(
        chosen,
        tokens=tokens,
        epochs=_epochs(chosen, hyperparameters, rft),
        teacher=job_type == "DISTILLATION",
    )
    return Checked(
        chosen, job_type, hyperparameters, rft, training, sources, tuple(summaries), estimate
    )


def _print_estimate(estimate: Estimate, as_json: bool) -> None:
    for line in estimate.lines:
        note(f"estimate: {line}", as_json=as_json)


def _lazy_s3(region: str | None, profile: str | None) -> Callable[[], S3Client]:
    from customize.aws import AwsContext

    aws = AwsContext(region, profile)
    return lambda: aws.s3


def estimate(
    base: Base,
    data: Data = None,
    validation: Validation = None,
    kind: Kind = "FINE_TUNING",
    hp: Hp = None,
    teacher: Teacher = None,
    family: FamilyOpt = None,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Validate the data and print what a job would cost (training, storage, serving)."""
    with reported_errors(as_json):
        checked = check_inputs(
            base=base, family_name=family, kind=kind, data=data, validation=validation, hp=hp,
            teacher=teacher, logs=None, media_bucket=lambda: None, use_log_responses=False,
            s3=_lazy_s3(region, profile),
        )  # fmt: skip
        if not as_json:
            for line in checked.estimate.lines:
                out().print(line)
        finish(
            {
                "ok": True,
                "family": checked.family.name,
                "records": {s.which: s.records for s in checked.summaries},
                "estimated_tokens": sum(s.estimated_tokens for s in checked.summaries[:1]),
                "estimate": checked.estimate.as_dict(),
            },
            None,
            as_json,
        )


def submit(
    base: Base,
    output: Annotated[
        str, typer.Option("--output", help="s3:// prefix for the job's output (and uploaded data).")
    ],
    role_arn: Annotated[
        str,
        typer.Option("--role-arn", help="IAM role Bedrock assumes to read data and write output."),
    ],
    data: Data = None,
    validation: Validation = None,
    kind: Kind = "FINE_TUNING",
    hp: Hp = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Job name (default: derived from the inputs).")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option("--model-name", help="Custom model name (default: JOB-model).")
    ] = None,
    teacher: Teacher = None,
    invocation_logs: Logs = None,
    use_log_responses: Annotated[
        bool,
        typer.Option(
            "--use-log-responses", help="With --invocation-logs: train on the logged responses."
        ),
    ] = False,
    grader_lambda: Annotated[
        str | None,
        typer.Option("--grader-lambda", help="Lambda ARN that scores answers, for --type rft."),
    ] = None,
    data_prefix: DataPrefix = None,
    retry: Annotated[
        bool,
        typer.Option(
            "--retry", help="Run again when the job with these inputs ended Failed or Stopped."
        ),
    ] = False,
    kms_key: KmsKey = None,
    tag: Tags = None,
    model_tag: Annotated[
        list[str] | None,
        typer.Option("--model-tag", help="Tag KEY=VALUE for the custom model (repeatable)."),
    ] = None,
    subnet: Subnets = None,
    security_group: SecurityGroups = None,
    family: FamilyOpt = None,
    wait: Wait = False,
    poll_interval: PollInterval = 60.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Validate data and hyper-parameters, print the cost estimate, upload the data, start a
    Bedrock customization job. A retried job gets the name NAME-rN."""
    from customize.aws import AwsContext
    from customize.commands.jobs_cmd import failure_line, follow_job

    with reported_errors(as_json):
        aws = AwsContext(region, profile)
        checked = check_inputs(
            base=base, family_name=family, kind=kind, data=data, validation=validation, hp=hp,
            teacher=teacher, logs=invocation_logs,
            media_bucket=lambda: parse_s3_uri(data_prefix or output).bucket,
            use_log_responses=use_log_responses, s3=lambda: aws.s3,
        )  # fmt: skip
        output_location = parse_s3_uri(output)
        prefix = parse_s3_uri(data_prefix) if data_prefix else None
        _print_estimate(checked.estimate, as_json)
        for summary in checked.summaries:
            for warning in summary.warnings:
                note(f"{summary.which} data: {warning}", as_json=as_json)
        inputs = JobInputs(
            base_model=base,
            family=checked.family,
            customization_type=customization_type(kind),
            training=checked.training,
            validation=checked.validation,
            output=output_location,
            role_arn=role_arn,
            hyperparameters=checked.hyperparameters,
            job_name=name,
            model_name=model_name,
            teacher=teacher,
            data_prefix=prefix,
            kms_key=kms_key,
            job_tags=parse_tags(tag),
            model_tags=parse_tags(model_tag),
            subnets=tuple(subnet or ()),
            security_groups=tuple(security_group or ()),
            grader_lambda=grader_lambda,
            rft_hyperparameters=checked.rft,
        )
        if (subnet is None) != (security_group is None):
            raise UsageError("a VPC needs both --subnet and --security-group")
        plan = plan_job(inputs)
        result = submit_job(
            aws, plan, retry=retry, on_step=lambda step: note(step, as_json=as_json)
        )
        for message in result.notes:
            note(message, as_json=as_json)
        payload: dict[str, Any] = {
            "ok": True,
            "job_arn": result.job_arn,
            "job_name": result.job_name,
            "custom_model_name": result.model_name,
            "client_request_token": result.token,
            "already_submitted": result.reused,
            "attempt": result.attempt,
            "uploads": list(result.uploads),
            "hyperparameters": checked.hyperparameters or checked.rft,
            "estimate": checked.estimate.as_dict(),
        }
        if not as_json:
            for upload in result.uploads:
                verb = (
                    "already in S3, skipped"
                    if upload["skipped"]
                    else f"uploaded {upload['bytes']:,} bytes"
                )
                note(f"{upload['data']} data: {verb} ({upload['uri']})", as_json=False)
            prefix_text = "already submitted: " if result.reused else ""
            out().print(f"{prefix_text}{result.job_arn}")
        failure = None
        if wait:
            state = follow_job(aws, result.job_arn, poll_interval, as_json)
            payload["job"] = state.as_dict()
            failure = failure_line(state)
            if not as_json and failure is None:
                out().print(f"custom model: {state.output_model_arn}")
        else:
            note(f"follow it: strata customize status {result.job_arn} --wait", as_json=as_json)
        finish(payload, failure, as_json)
