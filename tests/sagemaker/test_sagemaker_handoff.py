"""A completed SageMaker job registers a model package, imports into Bedrock, and its variant
shows the whole lineage: dataset → training job → model package → import → imported model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters_local.models.loading import resolve_base
from customize.s3 import file_sha256
from tests.customize.customize_fake_bedrock import FakeBedrock
from tests.fakes.sagemaker import trust


@pytest.fixture
def bedrock(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrock]:
    fake = FakeBedrock(upstream=aws.moto_url, s3_endpoint=aws.moto_url).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", fake.url)
    yield fake
    fake.stop()


def _train_on_sagemaker(cli: Any, aws: Any, data: Path, out: Path, *extra: str) -> Any:
    args = ["train", "lora", "--data", str(data), "--out", str(out), "--on", "sagemaker"]
    args += ["--role-arn", aws.role_arn, "--output", f"s3://{aws.bucket}/r"]
    return CliRunner().invoke(cli, [*args, "--poll-interval", "0.1", "--json", *extra])


def test_job_to_model_package_to_bedrock_import_to_variant_lineage(
    cli: Any,
    aws: Any,
    bedrock: FakeBedrock,
    data_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRATA_HOME", str(tmp_path / "home"))
    # The container's output: the adapter and a merged export (here the built-in model's files).
    export = resolve_base("builtin")
    aws.fake.script.artifacts = {
        "adapter/report.json": b"{}",
        **{f"export/{p.name}": p.read_bytes() for p in export.iterdir() if p.is_file()},
    }
    trained = _train_on_sagemaker(cli, aws, data_files[0], tmp_path / "out", "--export", "bf16")
    assert trained.exit_code == 0, trained.output
    payload = json.loads(trained.stdout)
    job_arn, package_arn = payload["job_arn"], payload["model_package"]["package_arn"]

    role = aws.client("iam").create_role(
        RoleName="bedrock-import", AssumeRolePolicyDocument=trust("bedrock.amazonaws.com")
    )["Role"]["Arn"]
    imported = CliRunner().invoke(
        cli,
        [
            "customize",
            "import",
            "--from-training-job",
            payload["job_name"],
            "--output",
            f"s3://{aws.bucket}/imports",
            "--role-arn",
            role,
            "--name",
            "tuned",
            "--variant",
            "tuned-v1",
            "--wait",
            "--poll-interval",
            "0.1",
        ],
    )
    assert imported.exit_code == 0, imported.output

    shown = CliRunner().invoke(cli, ["variants", "show", "tuned-v1", "--json"])
    assert shown.exit_code == 0, shown.output
    variant = json.loads(shown.stdout)["variant"]
    lineage = variant["lineage"]
    assert lineage["dataset"] == f"sha256:{file_sha256(data_files[0])}"
    assert lineage["training_job"] == job_arn
    assert lineage["model_package"] == package_arn
    assert lineage["import_job"].startswith("arn:aws:bedrock:")
    assert variant["target"] == f"bedrock:{lineage['imported_model']}"
    # And the other way: the model package records the Bedrock import it became.
    package = aws.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    metadata = package["CustomerMetadataProperties"]
    assert metadata["strata:bedrock-import-job"] == lineage["import_job"]
    assert metadata["strata:bedrock-model"] == lineage["imported_model"]
    text = CliRunner().invoke(cli, ["variants", "show", "tuned-v1"]).output
    assert "training_job=" in text and "model_package=" in text


def test_a_job_without_an_export_is_refused_with_the_fix(
    cli: Any, aws: Any, data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    aws.fake.script.artifacts = {"adapter/report.json": b"{}"}
    trained = _train_on_sagemaker(cli, aws, data_files[0], tmp_path / "out")
    assert trained.exit_code == 0, trained.output
    name = json.loads(trained.stdout)["job_name"]
    result = CliRunner().invoke(
        cli,
        [
            "customize",
            "import",
            "--from-training-job",
            name,
            "--output",
            f"s3://{aws.bucket}/i",
            "--role-arn",
            aws.role_arn,
            "--name",
            "tuned",
        ],
    )
    assert result.exit_code == 1
    assert "wrote no merged export" in " ".join(result.output.split())
