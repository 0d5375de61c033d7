"""``strata train lora --on sagemaker`` against moto and the SageMaker fake, through real boto3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters_local.training.progress import metric_line
from customize.s3 import file_sha256
from customize.sagemaker.follow import parse_metrics
from customize.sagemaker.request import METRIC_DEFINITIONS
from tests.fakes.sagemaker import REGION

LOG_LINES = [
    "strata-train node 1/2: 4 process(es), world size 8",
    metric_line(10, 20, loss=2.5, tokens_per_s=1500.0),
    metric_line(10, 20, eval_loss=2.25),
    metric_line(20, 20, loss=1.125, tokens_per_s=1800.0),
    metric_line(20, 20, eval_loss=1.0625),
]
ADAPTER = {
    "adapter/adapter_config.json": b'{"r": 16}',
    "adapter/adapter_model.safetensors": b"weights",
    "adapter/report.json": b'{"steps_done": 20}',
}


def _train(cli: Any, aws: Any, data: tuple[Path, Path], out: Path, *extra: str) -> Any:
    args = [
        "train",
        "lora",
        "--data",
        str(data[0]),
        "--eval",
        str(data[1]),
        "--out",
        str(out),
        "--steps",
        "20",
        "--rank",
        "16",
        "--lr",
        "0.001",
        "--on",
        "sagemaker",
        "--instance-type",
        "ml.g5.12xlarge",
        "--instance-count",
        "2",
        "--role-arn",
        aws.role_arn,
        "--output",
        f"s3://{aws.bucket}/runs",
        "--poll-interval",
        "0.1",
        *extra,
    ]
    return CliRunner().invoke(cli, args)


def test_the_request_is_exactly_right_and_the_job_is_followed_to_completion(
    cli: Any, aws: Any, data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    aws.fake.script.log_lines = LOG_LINES
    aws.fake.script.artifacts = ADAPTER
    result = _train(
        cli,
        aws,
        data_files,
        tmp_path / "out",
        "--spot",
        "--max-runtime",
        "3600",
        "--max-wait",
        "7200",
        "--logs",
    )
    assert result.exit_code == 0, result.output
    creates = [body for op, body in aws.fake.requests if op == "CreateTrainingJob"]
    assert len(creates) == 1
    name = creates[0]["TrainingJobName"]
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=name)

    assert job["AlgorithmSpecification"]["TrainingImage"] == (
        f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch-training:2.8.0-gpu-py312"
    )
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == [
        dict(m) for m in METRIC_DEFINITIONS
    ]
    assert job["ResourceConfig"] == {
        "InstanceType": "ml.g5.12xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 50,
    }
    assert job["RoleArn"] == aws.role_arn
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert job["CheckpointConfig"] == {
        "S3Uri": f"s3://{aws.bucket}/runs/{name}/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert job["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{aws.bucket}/runs",
        "CompressionType": "NONE",
    }
    hps = job["HyperParameters"]
    # Only what the user set travels; unset targets are left to the job (no "targets" key).
    assert "targets" not in hps
    assert {k: hps[k] for k in ("method", "base", "rank", "alpha", "steps", "lr")} == {
        "method": "lora",
        "base": "builtin",
        "rank": "16",
        "alpha": "32",  # unset alpha follows the rank (2 x r), as in local training
        "steps": "20",
        "lr": "0.001",
    }
    assert hps["sagemaker_program"] == "entry.py"
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]
    }
    assert set(channels) == {"train", "eval"}
    keys = aws.keys()
    # Each channel is a prefix holding exactly the uploaded file; the source archive is there too.
    for channel, local in zip(("train", "eval"), data_files, strict=True):
        prefix = channels[channel].removeprefix(f"s3://{aws.bucket}/")
        assert [k for k in keys if k.startswith(prefix)] == [prefix + local.name]
    source = hps["sagemaker_submit_directory"].removeprefix(f"s3://{aws.bucket}/")
    assert source in keys and source.endswith("sourcedir.tar.gz")

    # Followed to completion: every secondary status seen, metrics parsed from the log lines.
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    output = result.output
    for step in ("Starting", "Downloading", "Training", "Uploading", "Completed"):
        assert step in output
    assert "eval_loss: 1.062" in output and "loss: 1.125" in output
    assert metric_line(20, 20, eval_loss=1.0625) in output  # --logs printed the tail
    assert "Cost so far" in output
    # Registered in the SageMaker Model Registry (moto), lineage in its metadata.
    registry = aws.client("sagemaker")
    packages = registry.list_model_packages(ModelPackageGroupName="strata-builtin-upper")
    [summary] = packages["ModelPackageSummaryList"]
    package = registry.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["strata:training-job"] == job["TrainingJobArn"]
    assert metadata["strata:data-sha256"] == file_sha256(data_files[0])
    assert metadata["strata:metric:eval_loss"] == "1.0625"
    assert metadata["strata:model-prefix"] == f"s3://{aws.bucket}/runs/{name}/output/model/"
    # The finished adapter came back into --out.
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == {"steps_done": 20}


def test_metric_definitions_parse_the_trainers_own_lines() -> None:
    assert parse_metrics(LOG_LINES, METRIC_DEFINITIONS) == {
        "loss": 1.125,
        "eval_loss": 1.0625,
        "tokens_per_s": 1800.0,
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--instance-type", "ml.g9.huge"], "--instance-type 'ml.g9.huge'"),
        (["--spot"], "--spot needs --max-wait"),
        (
            ["--spot", "--max-wait", "60", "--max-runtime", "3600"],
            "--max-wait (60s) must be at least",
        ),
        (["--role-arn", ""], "--role-arn is required"),
        (["--vpc-subnets", "subnet-1"], "--vpc-subnets and --security-groups go together"),
    ],
)
def test_bad_inputs_are_refused_before_any_aws_call(
    cli: Any,
    aws: Any,
    data_files: tuple[Path, Path],
    tmp_path: Path,
    extra: list[str],
    message: str,
) -> None:
    before = aws.keys()
    result = _train(cli, aws, data_files, tmp_path / "out", *extra)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert aws.fake.requests == []  # no SageMaker call at all
    assert aws.keys() == before  # nothing uploaded


def test_a_bucket_in_another_region_is_refused_before_upload_or_create(
    cli: Any, aws: Any, data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    aws.client("s3").create_bucket(
        Bucket="strata-eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    args = [
        "train",
        "lora",
        "--data",
        str(data_files[0]),
        "--out",
        str(tmp_path / "o"),
        "--on",
        "sagemaker",
        "--role-arn",
        aws.role_arn,
        "--output",
        "s3://strata-eu-bucket/x",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "is in eu-west-1, but the job would run in us-east-1" in " ".join(result.output.split())
    assert aws.fake.requests == []
    listed = aws.client("s3").list_objects_v2(Bucket="strata-eu-bucket")
    assert listed.get("KeyCount", 0) == 0


def test_a_failed_job_exits_1_with_its_reason(
    cli: Any, aws: Any, data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    aws.fake.script.failure = "AlgorithmError: CUDA out of memory"
    result = _train(cli, aws, data_files, tmp_path / "out")
    assert result.exit_code == 1
    assert "failed: AlgorithmError: CUDA out of memory" in " ".join(result.output.split())


def test_no_wait_then_status_list_stop_and_a_later_register(
    cli: Any, aws: Any, data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    runner = CliRunner()
    aws.fake.script.log_lines = LOG_LINES
    started = _train(cli, aws, data_files, tmp_path / "a", "--no-wait", "--json")
    assert started.exit_code == 0, started.output
    first = json.loads(started.stdout)["job_name"]
    second = json.loads(
        _train(
            cli, aws, data_files, tmp_path / "b", "--no-wait", "--json", "--job-name", "other"
        ).stdout
    )["job_name"]
    assert second == "other"

    status = runner.invoke(cli, ["train", "status", first, "--json"])
    assert json.loads(status.stdout)["job"]["status"] == "InProgress"
    listed = runner.invoke(cli, ["train", "list", "--name-contains", "", "--json"])
    assert {j["TrainingJobName"] for j in json.loads(listed.stdout)["jobs"]} == {first, second}
    stopped = runner.invoke(cli, ["train", "stop", first])
    assert stopped.exit_code == 0 and "stopping" in stopped.output
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=first)
    assert job["TrainingJobStatus"] == "Stopping"

    waited = runner.invoke(cli, ["train", "status", second, "--wait", "--poll-interval", "0.1"])
    assert waited.exit_code == 0 and "Completed" in waited.output
    registered = runner.invoke(
        cli, ["train", "register", second, "--approval", "Approved", "--json"]
    )
    assert registered.exit_code == 0, registered.output
    package = json.loads(registered.stdout)["model_package"]
    assert package["group"] == "strata-builtin-upper" and package["approval"] == "Approved"
    described = aws.client("sagemaker").describe_model_package(
        ModelPackageName=package["package_arn"]
    )
    assert described["CustomerMetadataProperties"]["strata:data-sha256"] == file_sha256(
        data_files[0]
    )


def test_bottleneck_runs_on_sagemaker_too_but_cannot_be_exported(
    cli: Any, aws: Any, data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    base = [
        "train", "bottleneck", "--data", str(data_files[0]), "--out", str(tmp_path / "bn"),
        "--style", "houlsby", "--reduction-factor", "8", "--on", "sagemaker",
        "--instance-type", "ml.m5.xlarge", "--role-arn", aws.role_arn,
        "--output", f"s3://{aws.bucket}/bn", "--no-wait", "--json",
    ]  # fmt: skip
    refused = CliRunner().invoke(cli, [*base, "--export", "bf16"])
    assert refused.exit_code == 1 and "bottleneck adapters cannot be merged" in refused.output
    assert aws.fake.requests == []
    started = CliRunner().invoke(cli, base)
    assert started.exit_code == 0, started.output
    job = aws.client("sagemaker").describe_training_job(
        TrainingJobName=json.loads(started.stdout)["job_name"]
    )
    hps = job["HyperParameters"]
    assert (hps["method"], hps["style"], hps["reduction_factor"]) == ("bottleneck", "houlsby", "8")
    # A CPU instance gets the CPU build of the image.
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith(
        "pytorch-training:2.8.0-cpu-py312"
    )
