"""CreateTrainingJob and CreateHyperParameterTuningJob requests, built and checked without I/O.

Every rule here is one AWS would enforce later (or one that would waste a paid instance-hour);
checking it first gives a message that names the flag at fault and costs nothing. Limits are from
the SageMaker API reference: CreateTrainingJob (job name ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``,
MaxRuntimeInSeconds up to 28 days, MaxWaitTimeInSeconds ≥ MaxRuntimeInSeconds for managed spot)
and HyperParameterTuningJobConfig (tuning job names up to 32 characters; Hyperband takes no
TrainingJobEarlyStoppingType), https://docs.aws.amazon.com/sagemaker/latest/APIReference/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from customize.errors import UsageError
from customize.iam import role_name
from customize.s3 import S3Location
from customize.sagemaker.images import InstanceType, instance_type, training_image
from customize.sagemaker.search_space import Objective, ParamRange, Strategy

ENTRY_POINT = "entry.py"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
MAX_RUNTIME_LIMIT = 28 * 24 * 3600
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_TUNING_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
# The trainer prints these lines (adapters_local/training/progress.py); SageMaker turns them into
# metrics, HPO reads its objective from them, and ``strata train status`` parses the log with them.
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"Name": "loss", "Regex": rf"strata-train step=\S+ loss={_NUMBER}"},
    {"Name": "eval_loss", "Regex": rf"strata-train step=\S+ eval_loss={_NUMBER}"},
    {"Name": "tokens_per_s", "Regex": rf"strata-train step=\S+ .*tokens_per_s={_NUMBER}"},
)


@dataclass(frozen=True)
class Compute:
    """Where and how long the job runs; each field is one ``strata train --on sagemaker`` flag."""

    instance_type: str = "ml.g5.xlarge"
    instance_count: int = 1
    volume_gb: int = 50
    max_runtime: int = 24 * 3600
    spot: bool = False
    max_wait: int | None = None
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    kms_key: str | None = None
    image: str | None = None
    processes_per_host: int | None = None  # default: one per GPU, one on a CPU instance


def check_job_name(name: str, *, tuning: bool = False) -> str:
    pattern, limit = (_TUNING_NAME, 32) if tuning else (_JOB_NAME, 63)
    if not pattern.match(name):
        raise UsageError(
            f"--name {name!r}: up to {limit} letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


def check_compute(compute: Compute) -> InstanceType:
    instance = instance_type(compute.instance_type)
    if compute.instance_count < 1:
        raise UsageError("--instance-count must be at least 1")
    if compute.volume_gb < 1:
        raise UsageError("--volume-gb must be at least 1")
    if not 1 <= compute.max_runtime <= MAX_RUNTIME_LIMIT:
        raise UsageError(f"--max-runtime must be 1..{MAX_RUNTIME_LIMIT} seconds (28 days)")
    if compute.spot and compute.max_wait is None:
        raise UsageError(
            "--spot needs --max-wait (seconds to wait for spot capacity plus run time; "
            "at least --max-runtime)"
        )
    if compute.max_wait is not None:
        if not compute.spot:
            raise UsageError("--max-wait applies only with --spot")
        if compute.max_wait < compute.max_runtime:
            raise UsageError(
                f"--max-wait ({compute.max_wait}s) must be at least --max-runtime "
                f"({compute.max_runtime}s)"
            )
    if bool(compute.subnets) != bool(compute.security_groups):
        raise UsageError("--vpc-subnets and --security-groups go together: pass both or neither")
    if compute.processes_per_host is not None and compute.processes_per_host < 1:
        raise UsageError("--processes-per-host must be at least 1")
    if compute.processes_per_host and instance.gpus and compute.processes_per_host > instance.gpus:
        raise UsageError(
            f"--processes-per-host {compute.processes_per_host} exceeds the "
            f"{instance.gpus} GPU(s) of {instance.name}"
        )
    return instance


def check_role(role_arn: str | None) -> str:
    if not role_arn:
        raise UsageError(
            "--role-arn is required: the IAM role SageMaker assumes to read the data and write "
            "the output (it must trust sagemaker.amazonaws.com)"
        )
    role_name(role_arn)
    return role_arn


@dataclass(frozen=True)
class JobInputs:
    """The S3 side of a job: where its code, data and results live."""

    output: S3Location
    source: S3Location  # the source archive (sourcedir.tar.gz)
    channels: dict[str, S3Location]  # train, eval, base: S3 prefixes or objects
    tags: dict[str, str] = field(default_factory=dict)


def _channel(name: str, location: S3Location) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": location.uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def _definition(
    name: str,
    region: str,
    role_arn: str,
    compute: Compute,
    instance: InstanceType,
    inputs: JobInputs,
    hyperparameters: dict[str, str],
) -> dict[str, Any]:
    """The part a training job and a tuning job's TrainingJobDefinition share."""
    output: dict[str, Any] = {
        "S3OutputPath": inputs.output.uri.rstrip("/"),
        # Uncompressed: the adapter and the merged export land as plain files under
        # OUTPUT/JOB/output/model/, which Bedrock model import can read without unpacking.
        "CompressionType": "NONE",
    }
    resources: dict[str, Any] = {
        "InstanceType": instance.name,
        "InstanceCount": compute.instance_count,
        "VolumeSizeInGB": compute.volume_gb,
    }
    if compute.kms_key:
        output["KmsKeyId"] = compute.kms_key
        resources["VolumeKmsKeyId"] = compute.kms_key
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": compute.max_runtime}
    if compute.spot and compute.max_wait is not None:
        stopping["MaxWaitTimeInSeconds"] = compute.max_wait
    hps = {
        **hyperparameters,
        "sagemaker_program": ENTRY_POINT,
        "sagemaker_submit_directory": inputs.source.uri,
        "sagemaker_region": region,
    }
    if compute.processes_per_host:
        hps["processes_per_host"] = str(compute.processes_per_host)
    definition: dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": compute.image or training_image(region, instance),
            "TrainingInputMode": "File",
            "MetricDefinitions": [dict(m) for m in METRIC_DEFINITIONS],
        },
        "HyperParameters": hps,
        "RoleArn": role_arn,
        "InputDataConfig": [_channel(k, v) for k, v in sorted(inputs.channels.items())],
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": compute.spot,
        # Checkpoints go to S3 for every job: a spot interruption or a retried job resumes there.
        "CheckpointConfig": {
            "S3Uri": inputs.output.join(name, "checkpoints").uri,
            "LocalPath": CHECKPOINT_DIR,
        },
    }
    if compute.subnets:
        definition["VpcConfig"] = {
            "Subnets": list(compute.subnets),
            "SecurityGroupIds": list(compute.security_groups),
        }
    return definition


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def training_job_request(
    *,
    name: str,
    region: str,
    role_arn: str | None,
    compute: Compute,
    inputs: JobInputs,
    hyperparameters: dict[str, str],
) -> dict[str, Any]:
    """CreateTrainingJob's arguments; raises UsageError naming the flag at fault."""
    check_job_name(name)
    role = check_role(role_arn)
    instance = check_compute(compute)
    if "train" not in inputs.channels:
        raise UsageError("a training job needs a train channel (--data)")
    definition = _definition(name, region, role, compute, instance, inputs, hyperparameters)
    return {"TrainingJobName": name, **definition, "Tags": _tags(inputs.tags)}


@dataclass(frozen=True)
class TuningSpec:
    objective: Objective
    params: tuple[ParamRange, ...]
    max_jobs: int = 12
    parallel: int = 3
    strategy: Strategy = "bayesian"
    early_stopping: bool = False


def _ranges(params: tuple[ParamRange, ...]) -> dict[str, list[dict[str, Any]]]:
    ranges: dict[str, list[dict[str, Any]]] = {
        "IntegerParameterRanges": [],
        "ContinuousParameterRanges": [],
        "CategoricalParameterRanges": [],
    }
    for p in params:
        if p.kind == "categorical":
            ranges["CategoricalParameterRanges"].append({"Name": p.name, "Values": list(p.choices)})
            continue
        key = "IntegerParameterRanges" if p.kind == "int" else "ContinuousParameterRanges"
        low, high = (
            (str(int(p.low)), str(int(p.high))) if p.kind == "int" else (repr(p.low), repr(p.high))
        )
        ranges[key].append(
            {
                "Name": p.name,
                "MinValue": low,
                "MaxValue": high,
                "ScalingType": "Logarithmic" if p.log else "Linear",
            }
        )
    return {k: v for k, v in ranges.items() if v}


def check_tuning(tuning: TuningSpec) -> None:
    if tuning.max_jobs < 1:
        raise UsageError("--max-jobs must be at least 1")
    if not 1 <= tuning.parallel <= tuning.max_jobs:
        raise UsageError("--parallel must be between 1 and --max-jobs")
    if tuning.strategy == "hyperband" and tuning.early_stopping:
        raise UsageError(
            "--early-stopping auto does not combine with --strategy hyperband "
            "(Hyperband stops poor jobs itself)"
        )


def tuning_job_request(
    *,
    name: str,
    region: str,
    role_arn: str | None,
    compute: Compute,
    inputs: JobInputs,
    hyperparameters: dict[str, str],
    tuning: TuningSpec,
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob's arguments; the tuned names leave the static set."""
    check_job_name(name, tuning=True)
    role = check_role(role_arn)
    instance = check_compute(compute)
    check_tuning(tuning)
    if tuning.objective.metric == "eval_loss" and "eval" not in inputs.channels:
        raise UsageError("--objective eval_loss needs evaluation data (--eval)")
    definition = _definition(name, region, role, compute, instance, inputs, hyperparameters)
    tuned = {p.name for p in tuning.params}
    static = {k: v for k, v in definition.pop("HyperParameters").items() if k not in tuned}
    config: dict[str, Any] = {
        "Strategy": tuning.strategy.capitalize(),
        "HyperParameterTuningJobObjective": {
            "Type": "Minimize" if tuning.objective.minimize else "Maximize",
            "MetricName": tuning.objective.metric,
        },
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": tuning.max_jobs,
            "MaxParallelTrainingJobs": tuning.parallel,
        },
        "ParameterRanges": _ranges(tuning.params),
    }
    if tuning.strategy != "hyperband":
        config["TrainingJobEarlyStoppingType"] = "Auto" if tuning.early_stopping else "Off"
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": {"StaticHyperParameters": static, **definition},
        "Tags": _tags(inputs.tags),
    }
