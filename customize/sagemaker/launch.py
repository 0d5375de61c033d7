"""``strata train lora|bottleneck --on sagemaker``: submit, follow, register, fetch the adapter."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from customize.aws import AwsContext
from customize.commands.common import err, finish, note, out, reported_errors
from customize.errors import UsageError
from customize.progress import StatusDisplay
from customize.s3 import parse_s3_uri
from customize.sagemaker import clients
from customize.sagemaker.follow import JobSnapshot, LogTail, describe, job_rows
from customize.sagemaker.hyperparams import to_hyperparameters
from customize.sagemaker.options import RemoteOptions
from customize.sagemaker.registry import register
from customize.sagemaker.request import Compute, training_job_request
from customize.sagemaker.submit import (
    Staged,
    create_training_job,
    preflight,
    stage,
    upload_all,
)
from customize.tokens import request_token, resource_name
from customize.waiting import wait_for

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def compute_of(remote: RemoteOptions) -> Compute:
    return Compute(
        instance_type=remote.instance_type,
        instance_count=remote.instance_count,
        volume_gb=remote.volume_gb,
        max_runtime=remote.max_runtime,
        spot=remote.spot,
        max_wait=remote.max_wait,
        subnets=_split(remote.vpc_subnets),
        security_groups=_split(remote.security_groups),
        kms_key=remote.kms_key,
        image=remote.image,
        processes_per_host=remote.processes_per_host,
    )


def trainer_hyperparameters(settings: dict[str, Any], remote: RemoteOptions) -> dict[str, str]:
    hps = to_hyperparameters(settings)
    if remote.export_dtype:
        if settings["method"] != "lora":
            raise UsageError("--export merges a LoRA; bottleneck adapters cannot be merged")
        if remote.export_dtype not in ("bf16", "fp16", "fp32"):
            raise UsageError("--export must be bf16, fp16 or fp32")
        hps["export"] = remote.export_dtype
    return hps


@dataclass(frozen=True)
class Prepared:
    aws: AwsContext
    region: str
    hps: dict[str, str]
    task: str
    staged: Staged


def prepare(settings: dict[str, Any], remote: RemoteOptions) -> Prepared:
    """What a training and a tuning job share: checked flags, hyper-parameters, staged uploads."""
    if not remote.output:
        raise UsageError("--output s3://bucket/prefix is required with --on sagemaker")
    parse_s3_uri(remote.output)
    aws = AwsContext(remote.region, remote.profile)
    region = clients.region_of(aws)
    hps = trainer_hyperparameters(settings, remote)
    task = remote.task or Path(settings["data"]).stem
    tags = {"strata:method": settings["method"], "strata:task": task}
    staged = stage(
        remote.output, settings["data"], settings.get("eval_data"), settings["base"], tags
    )
    # Recorded with the job, so `strata train register` can fill in the lineage later.
    hps["data_sha256"] = staged.inputs.tags["strata:data-sha256"]
    hps["task"] = task
    return Prepared(aws, region, hps, task, staged)


def launch(settings: dict[str, Any], remote: RemoteOptions, resume: bool) -> None:
    """Entry from the train commands; every refusal happens before the first AWS call."""
    with reported_errors(remote.as_json):
        if resume:
            raise UsageError(
                "--resume is for local runs; a SageMaker job resumes from its S3 checkpoints"
            )
        job = prepare(settings, remote)
        aws, region, hps, task, staged = job.aws, job.region, job.hps, job.task, job.staged
        compute = compute_of(remote)
        token = request_token(
            {
                "hps": hps,
                "uploads": [u.sha256 for u in staged.uploads],
                "compute": repr(compute),
                "output": remote.output,
            }
        )
        name = remote.job_name or resource_name(f"strata-{settings['method']}-{task}", token)
        request = training_job_request(
            name=name,
            region=region,
            role_arn=remote.role_arn,
            compute=compute,
            inputs=staged.inputs,
            hyperparameters=hps,
        )
        assert remote.role_arn is not None  # checked by training_job_request
        for line in preflight(aws.s3, aws.iam, staged, region, remote.role_arn):
            note(line, as_json=remote.as_json)
        sent = upload_all(aws.s3, staged, lambda step: note(step, as_json=remote.as_json))
        shutil.rmtree(staged.workdir, ignore_errors=True)
        sagemaker = clients.sagemaker(aws)
        arn, existed = create_training_job(sagemaker, request)
        if not remote.as_json:
            out().print(("already submitted: " if existed else "") + arn)
        payload: dict[str, Any] = {
            "job_arn": arn,
            "job_name": name,
            "uploaded_bytes": sent,
            "already_submitted": existed,
        }
        if not remote.wait:
            finish(payload, None, remote.as_json)
            return
        try:
            state = follow(aws, sagemaker, name, remote)
        except KeyboardInterrupt:
            note(f"still running; follow it with: strata train status {name} --wait", as_json=False)
            raise
        payload["job"] = state.as_dict()
        failure = None
        if state.status != "Completed":
            reason = state.failure or "no reason given"
            failure = f"training job {state.name} {state.status.lower()}: {reason}"
        else:
            registered = register(sagemaker, state, task=task, approval=remote.approval)
            payload["model_package"] = registered.__dict__
            note(
                f"registered {registered.package_arn} ({registered.approval})",
                as_json=remote.as_json,
            )
            fetched = fetch_adapter(aws.s3, state, Path(settings["out"]))
            note(
                f"adapter downloaded to {settings['out']} ({fetched} files)", as_json=remote.as_json
            )
        finish(payload, failure, remote.as_json)


def follow(aws: AwsContext, sagemaker: Any, name: str, remote: RemoteOptions) -> JobSnapshot:
    """Poll until the job ends, drawing status, metrics and cost; ``--logs`` prints new lines."""
    tail = LogTail(clients.logs(aws), name)
    printed = 0

    def fetch() -> JobSnapshot:
        return describe(sagemaker, name, tail)

    def show_logs(state: JobSnapshot) -> None:
        nonlocal printed
        if remote.logs and not remote.as_json:
            for line in tail.lines[printed:]:
                err().print(line, markup=False, highlight=False)
            printed = len(tail.lines)

    if remote.as_json:
        return wait_for(fetch, lambda s: s.done, interval=remote.poll_interval)
    with StatusDisplay(err(), "SageMaker training job", job_rows) as display:

        def update(state: JobSnapshot) -> None:
            show_logs(state)
            display.update(state)

        return wait_for(fetch, lambda s: s.done, interval=remote.poll_interval, on_update=update)


def fetch_adapter(s3: S3Client, state: JobSnapshot, destination: Path) -> int:
    """Copies OUTPUT/JOB/output/model/adapter/ into ``destination``; returns the file count."""
    prefix = parse_s3_uri(state.model_prefix).join("adapter").as_prefix()
    paginator = s3.get_paginator("list_objects_v2")
    count = 0
    for page in paginator.paginate(Bucket=prefix.bucket, Prefix=prefix.key):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix.key) :]
            if not relative or relative.endswith("/"):
                continue
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(prefix.bucket, item["Key"], str(target))
            count += 1
    return count
