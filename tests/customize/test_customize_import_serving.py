"""Model import, Provisioned Throughput and on-demand deployments against the loopback fake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from customize.cli import app, variants_app
from tests.customize.customize_fake_bedrock import JOB_ARN_PATTERN
from tests.customize.customize_test_env import Aws


def _json(result: Result) -> Any:
    assert result.stdout.strip(), result.output
    return json.loads(result.stdout)


def _import(runner: CliRunner, aws: Aws, folder: Path, name: str, *extra: str) -> Result:
    args = ["import", "--model-dir", str(folder), "--output", f"s3://{aws.bucket}/imports"]
    return runner.invoke(
        app,
        [
            *args,
            "--role-arn",
            aws.role_arn,
            "--name",
            name,
            "--wait",
            "--poll-interval",
            "0.1",
            *extra,
        ],
    )


def test_import_uploads_checks_and_reports_the_imported_model(
    tiny_llama: Path, aws: Aws, runner: CliRunner
) -> None:
    result = _import(runner, aws, tiny_llama, "tiny-llama", "--json")
    assert result.exit_code == 0, result.output
    payload = _json(result)
    assert JOB_ARN_PATTERN.match(payload["job_arn"])
    assert payload["import"]["status"] == "Completed"
    assert payload["import"]["imported_model_arn"].startswith(
        "arn:aws:bedrock:us-east-1:123456789012:imported-model/"
    )
    assert payload["check"]["architecture"] == "LlamaForCausalLM"
    # Every file of the folder is in S3 under the prefix the job was given, with its hash.
    prefix = payload["s3_uri"].removeprefix(f"s3://{aws.bucket}/")
    uploaded = aws.objects(prefix)
    assert {key.removeprefix(prefix) for key in uploaded} == {p.name for p in tiny_llama.iterdir()}
    job = aws.fake.state.import_jobs[payload["job_name"]]
    assert job["importedModelName"] == "tiny-llama" and job["roleArn"] == aws.role_arn

    again = _json(_import(runner, aws, tiny_llama, "tiny-llama", "--json"))
    assert again["job_arn"] == payload["job_arn"] and again["already_submitted"] is True
    assert again["uploaded_bytes"] == 0 and again["skipped_files"] == len(uploaded)

    added = runner.invoke(
        variants_app, ["add", "tiny-imported", "--import-job", payload["job_arn"], "--json"]
    )
    assert added.exit_code == 0, added.output
    variant = _json(added)["variant"]
    assert variant["target"] == f"bedrock:{payload['import']['imported_model_arn']}"
    assert variant["method"] == "import" and variant["base_model"] == "llama"
    assert variant["import_job_arn"] == payload["job_arn"]


def test_failed_import_shows_bedrocks_failure_message(
    tiny_llama: Path, aws: Aws, runner: CliRunner
) -> None:
    message = "Unsupported model configuration: rope_scaling type 'yarn' is not supported"
    aws.fake.imports.failures["tiny-yarn"] = message
    result = _import(runner, aws, tiny_llama, "tiny-yarn")
    assert result.exit_code == 1
    assert result.stdout.startswith("arn:aws:bedrock:")
    assert "Status: InProgress" in result.stderr and "Status: Failed" in result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.endswith(f"failed: {message}")


def test_refused_folder_is_never_uploaded(
    tiny_llama: Path, tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    folder = tmp_path / "quantized"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_8bit": True}
    (folder / "config.json").write_text(json.dumps(config))
    result = _import(runner, aws, folder, "tiny-q")
    assert result.exit_code == 1
    assert (
        "Bedrock would refuse this folder: config.json has quantization_config "
        "(quant_method 'bitsandbytes')" in result.stderr
    )
    assert aws.objects() == {} and aws.fake.state.requests == []


def test_invalid_model_name_is_refused_locally(
    tiny_llama: Path, aws: Aws, runner: CliRunner
) -> None:
    result = _import(runner, aws, tiny_llama, "tiny.llama")
    assert (
        result.exit_code == 1 and "--name 'tiny.llama' must be letters and digits" in result.stderr
    )
    assert aws.fake.state.requests == []


def test_provisioned_throughput_waits_for_in_service_and_is_idempotent(
    aws: Aws, runner: CliRunner
) -> None:
    model = aws.fake.add_custom_model("support-bot", "amazon.titan-text-lite-v1:0:4k")
    aws.fake.serving.polls_to_finish = 3
    args = [
        "provision",
        "--model",
        model,
        "--units",
        "2",
        "--yes",
        "--wait",
        "--poll-interval",
        "0.1",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    arn = first.stdout.splitlines()[0]
    assert arn.startswith("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/")
    assert f"InService: invoke it with modelId {arn}" in first.stdout
    statuses = [line for line in first.stderr.splitlines() if "Status:" in line]
    assert "Status: Creating" in statuses[0] and "Model units: 2" in statuses[0]
    assert "Status: InService" in statuses[-1]

    again = _json(runner.invoke(app, [*args, "--json"]))
    assert again["serving"]["arn"] == arn and len(aws.fake.state.provisioned) == 1


def test_provisioning_failure_reaches_the_user(aws: Aws, runner: CliRunner) -> None:
    model = aws.fake.add_custom_model("big", "amazon.titan-text-lite-v1:0:4k")
    aws.fake.serving.failures["big-pt"] = "Insufficient capacity for 5 model units in us-east-1"
    result = runner.invoke(
        app,
        [
            "provision",
            "--model",
            model,
            "--units",
            "5",
            "--name",
            "big-pt",
            "--yes",
            "--wait",
            "--poll-interval",
            "0.1",
            "--json",
        ],
    )
    assert result.exit_code == 1
    assert (
        _json(result)["error"]
        == "big-pt failed: Insufficient capacity for 5 model units in us-east-1"
    )


def test_on_demand_deployment_where_the_family_supports_it(aws: Aws, runner: CliRunner) -> None:
    nova = aws.fake.add_custom_model("nova-ft", "amazon.nova-micro-v1:0:128k")
    result = runner.invoke(
        app,
        ["provision", "--model", nova, "--on-demand", "--wait", "--poll-interval", "0.1", "--json"],
    )
    assert result.exit_code == 0, result.output
    serving = _json(result)["serving"]
    assert (
        serving["kind"] == "deployment"
        and serving["status"] == "Active"
        and serving["model_arn"] == nova
    )

    titan = aws.fake.add_custom_model("titan-ft", "amazon.titan-text-lite-v1:0:4k")
    refused = runner.invoke(app, ["provision", "--model", titan, "--on-demand"])
    assert refused.exit_code == 1
    assert (
        "Amazon Titan Text G1 (Lite, Express) custom models cannot be deployed on demand"
        in refused.stderr
    )
    assert not any(
        m == "POST" and "custom-model-deployments" in p for m, p in aws.fake.state.requests[-3:]
    )


def test_provision_needs_exactly_one_mode(aws: Aws, runner: CliRunner) -> None:
    result = runner.invoke(app, ["provision", "--model", "arn:x", "--units", "1", "--on-demand"])
    assert (
        result.exit_code == 1 and "pass exactly one of --units N and --on-demand" in result.stderr
    )
