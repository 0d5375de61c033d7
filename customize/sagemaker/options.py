"""``--on sagemaker`` and its flags, added to ``strata train lora|bottleneck`` by a decorator.

The decorator appends the SageMaker options to the command's signature (typer reads the
signature), gathers them into one ``RemoteOptions`` and hands that to the command as ``remote``;
the command dispatches to ``customize.sagemaker.launch`` only when ``--on sagemaker`` is given,
so a local run never imports boto3.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Annotated, Any

import typer

_PANEL = "SageMaker (with --on sagemaker)"


@dataclass(frozen=True)
class RemoteOptions:
    on: str = "local"
    instance_type: str = "ml.g5.xlarge"
    instance_count: int = 1
    role_arn: str | None = None
    output: str | None = None
    spot: bool = False
    max_runtime: int = 24 * 3600
    max_wait: int | None = None
    volume_gb: int = 50
    vpc_subnets: str | None = None
    security_groups: str | None = None
    kms_key: str | None = None
    image: str | None = None
    processes_per_host: int | None = None
    job_name: str | None = None
    task: str | None = None
    export_dtype: str | None = None
    approval: str = "PendingManualApproval"
    wait: bool = True
    logs: bool = False
    poll_interval: float = 30.0
    region: str | None = None
    profile: str | None = None
    as_json: bool = False


def _option(*names: str, help_text: str, **extra: Any) -> Any:
    return typer.Option(*names, help=help_text, rich_help_panel=_PANEL, **extra)


_ANNOTATIONS: dict[str, Any] = {
    "on": Annotated[str, typer.Option("--on", help="Where to train: local or sagemaker.")],
    "instance_type": Annotated[
        str, _option("--instance-type", help_text="SageMaker instance type.")
    ],
    "instance_count": Annotated[
        int, _option("--instance-count", help_text="Instances (data parallel).")
    ],
    "role_arn": Annotated[
        str | None, _option("--role-arn", help_text="IAM role SageMaker assumes.")
    ],
    "output": Annotated[
        str | None, _option("--output", help_text="s3:// prefix for code, data, results.")
    ],
    "spot": Annotated[
        bool, _option("--spot", help_text="Managed spot training (needs --max-wait).")
    ],
    "max_runtime": Annotated[
        int, _option("--max-runtime", help_text="Seconds of training at most.")
    ],
    "max_wait": Annotated[
        int | None, _option("--max-wait", help_text="Spot: seconds to wait + run.")
    ],
    "volume_gb": Annotated[int, _option("--volume-gb", help_text="EBS volume per instance (GB).")],
    "vpc_subnets": Annotated[
        str | None, _option("--vpc-subnets", help_text="Comma-separated subnet ids.")
    ],
    "security_groups": Annotated[
        str | None, _option("--security-groups", help_text="Comma-separated security group ids.")
    ],
    "kms_key": Annotated[
        str | None, _option("--kms-key", help_text="KMS key for output and volumes.")
    ],
    "image": Annotated[
        str | None, _option("--image", help_text="Training image URI (default: AWS DLC PyTorch).")
    ],
    "processes_per_host": Annotated[
        int | None,
        _option(
            "--processes-per-host",
            help_text="Trainer processes per instance (default: one per GPU).",
        ),
    ],
    "job_name": Annotated[
        str | None, _option("--job-name", help_text="Training job name (default: from the inputs).")
    ],
    "task": Annotated[
        str | None,
        _option(
            "--task", help_text="Task name for the model package group (default: data file name)."
        ),
    ],
    "export_dtype": Annotated[
        str | None,
        _option(
            "--export",
            help_text="Also write a merged export (bf16, fp16, fp32) for Bedrock import.",
        ),
    ],
    "approval": Annotated[str, _option("--approval", help_text="Model package approval status.")],
    "wait": Annotated[bool, _option("--wait/--no-wait", help_text="Follow the job until it ends.")],
    "logs": Annotated[bool, _option("--logs", help_text="Print the job's CloudWatch log lines.")],
    "poll_interval": Annotated[
        float, _option("--poll-interval", help_text="Seconds between status checks.", min=0.0)
    ],
    "region": Annotated[str | None, _option("--region", help_text="AWS region.")],
    "profile": Annotated[str | None, _option("--profile", help_text="AWS named profile.")],
    "as_json": Annotated[bool, _option("--json", help_text="Print one JSON object on stdout.")],
}


def with_remote_options(command: Callable[..., None]) -> Callable[..., None]:
    """Adds the SageMaker flags to ``command``, which receives them as ``remote=RemoteOptions``."""
    names = [f.name for f in fields(RemoteOptions)]
    defaults = RemoteOptions()
    signature = inspect.signature(command)
    # The commands' modules use postponed annotations: resolve them here, where the command's
    # globals are known, so typer sees the Annotated options and not bare strings.
    hints = typing.get_type_hints(command, include_extras=True)
    kept = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
        if p.name != "remote"
    ]
    added = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=getattr(defaults, name),
            annotation=_ANNOTATIONS[name],
        )
        for name in names
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        remote = RemoteOptions(**{name: kwargs.pop(name) for name in names if name in kwargs})
        if remote.on not in ("local", "sagemaker"):
            raise typer.BadParameter("--on must be local or sagemaker", param_hint="--on")
        command(*args, **kwargs, remote=remote)

    wrapper.__annotations__ = {p.name: p.annotation for p in [*kept, *added]}
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept),
            *added,
        ]
    )
    return wrapper
