"""``customize import`` and ``customize import-check``: Bedrock Custom Model Import."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from customize.aws import AwsContext
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
    emit_json,
    finish,
    note,
    out,
    reported_errors,
    tag_list,
    vpc_config,
    wait_and_show,
)
from customize.errors import ImportFolderError, UsageError
from customize.imports.check import ImportCheck, check_import_folder
from customize.imports.submit import get_import, import_rows, plan_import, start_import
from customize.s3 import parse_s3_uri


def _describe(check: ImportCheck) -> str:
    size = (
        f"{check.total_bytes / 1e9:.2f} GB"
        if check.total_bytes >= 1e8
        else f"{check.total_bytes:,} bytes"
    )
    files = len(check.weight_files)
    return f"{check.architecture or '?'}, {check.dtype or '?'} weights in {files} file(s), {size}"


def _refuse(check: ImportCheck) -> None:
    if not check.ok:
        raise ImportFolderError("Bedrock would refuse this folder: " + "; ".join(check.problems))


def import_check(
    model_dir: Annotated[Path, typer.Argument(file_okay=False, help="Hugging Face model folder.")],
    as_json: JsonOut = False,
) -> None:
    """Check, without uploading, whether Bedrock Custom Model Import would accept a model folder."""
    with reported_errors(as_json):
        check = check_import_folder(model_dir)
        if as_json:
            emit_json(check.as_dict())
        else:
            for warning in check.warnings:
                out().print(f"{model_dir}: warning: {warning}")
            if check.ok:
                out().print(f"[green]OK[/green] {model_dir}: {_describe(check)}")
            for problem in check.problems:
                out().print(f"{model_dir}: {problem}")
        if not check.ok:
            raise typer.Exit(1)


def import_model(
    output: Annotated[
        str, typer.Option("--output", help="s3:// prefix to upload the folder under.")
    ],
    role_arn: Annotated[
        str, typer.Option("--role-arn", help="IAM role Bedrock assumes to read the model files.")
    ],
    name: Annotated[str, typer.Option("--name", help="Name of the imported model.")],
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", file_okay=False, help="Hugging Face model folder to import."),
    ] = None,
    from_training_job: Annotated[
        str | None,
        typer.Option("--from-training-job", help="A Completed SageMaker job (name or ARN)."),
    ] = None,
    variant: Annotated[
        str | None, typer.Option("--variant", help="With --from-training-job: add this variant.")
    ] = None,
    wait: Wait = False,
    kms_key: KmsKey = None,
    tag: Tags = None,
    model_tag: Annotated[
        list[str] | None,
        typer.Option("--model-tag", help="Tag KEY=VALUE for the imported model (repeatable)."),
    ] = None,
    subnet: Subnets = None,
    security_group: SecurityGroups = None,
    poll_interval: PollInterval = 30.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Check a model folder, upload it and import it into Bedrock; prints the imported-model ARN."""
    with reported_errors(as_json), tempfile.TemporaryDirectory() as scratch:
        handoff = None
        if from_training_job is not None:  # the SageMaker hand-off (customize/sagemaker)
            from customize.sagemaker.handoff import fetch_export

            handoff = fetch_export(AwsContext(region, profile), from_training_job, Path(scratch))
            model_dir = handoff.folder
        if model_dir is None:
            raise UsageError("pass --model-dir or --from-training-job")
        if variant is not None and not wait:
            raise UsageError("--variant is added when the import completes: pass --wait too")
        check = check_import_folder(model_dir)
        _refuse(check)
        note(f"folder OK: {_describe(check)}", as_json=as_json)
        for warning in check.warnings:
            note(f"warning: {warning}", as_json=as_json)
        from customize.costs import import_estimate

        estimate = import_estimate()
        for line in estimate.lines:
            note(f"estimate: {line}", as_json=as_json)
        from customize.commands.submit_cmd import parse_tags

        options: dict[str, Any] = {}
        if kms_key:
            options["importedModelKmsKeyId"] = kms_key
        if tag:
            options["jobTags"] = tag_list(parse_tags(tag))
        if model_tag:
            options["importedModelTags"] = tag_list(parse_tags(model_tag))
        vpc = vpc_config(subnet, security_group)
        if vpc:
            options["vpcConfig"] = vpc
        plan = plan_import(model_dir, parse_s3_uri(output), role_arn, name, options)
        aws = AwsContext(region, profile)
        started = start_import(aws, plan, on_step=lambda step: note(step, as_json=as_json))
        for message in started.notes:
            note(message, as_json=as_json)
        if not as_json:
            prefix = "already submitted: " if started.reused else ""
            out().print(f"{prefix}{started.job_arn}")
        payload = {
            "ok": True,
            "job_arn": started.job_arn,
            "job_name": started.job_name,
            "s3_uri": started.s3_uri,
            "already_submitted": started.reused,
            "uploaded_bytes": started.uploaded_bytes,
            "skipped_files": started.skipped_files,
            "check": check.as_dict(),
            "estimate": estimate.as_dict(),
        }
        failure = None
        if wait:
            fetch = lambda: get_import(aws.bedrock, started.job_arn)  # noqa: E731
            state = wait_and_show(
                fetch,
                title="Bedrock model import",
                rows=import_rows,
                interval=poll_interval,
                as_json=as_json,
            )
            payload["import"] = state.as_dict()
            if state.status == "Failed":
                reason = state.failure_message or "no failure message given"
                failure = f"import job {state.name} failed: {reason}"
            elif not as_json:
                out().print(f"imported model: {state.imported_model_arn}")
            if handoff is not None and state.status == "Completed":
                from customize.sagemaker.handoff import complete

                model = str(state.imported_model_arn)
                payload["lineage"] = complete(aws, handoff, state.arn, model, variant)
        if not wait:
            note(
                f"follow it: strata customize imports status {started.job_arn} --wait",
                as_json=as_json,
            )
        finish(payload, failure, as_json)
