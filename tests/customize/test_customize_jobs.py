"""Fine-tuning jobs against moto (S3, IAM, customization jobs) and the fake (what moto lacks)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from customize.cli import app, variants_app
from customize.variants.store import VariantStore, default_store_path
from tests.customize.customize_test_env import Aws

NOVA = "amazon.nova-micro-v1:0:128k"
RECORD = {
    "schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "Answer in one word."}],
    "messages": [
        {"role": "user", "content": [{"text": "Capital of France?"}]},
        {"role": "assistant", "content": [{"text": "Paris"}]},
    ],
}


def _dataset(tmp_path: Path, name: str = "train.jsonl", records: int = 10, extra: str = "") -> Path:
    path = tmp_path / name
    lines = [
        json.dumps({**RECORD, "system": [{"text": f"Answer in one word. {i}{extra}"}]})
        for i in range(records)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _submit(runner: CliRunner, aws: Aws, data: Path, *extra: str) -> Result:
    args = ["submit", "--base", NOVA, "--data", str(data), "--output", f"s3://{aws.bucket}/jobs"]
    return runner.invoke(
        app, [*args, "--role-arn", aws.role_arn, "--hp", "epochCount=2", "--json", *extra]
    )


def _json(result: Result) -> Any:
    assert result.stdout.strip(), result.output
    return json.loads(result.stdout)


def _job(aws: Aws, name: str) -> Any:
    return aws.moto_bedrock().model_customization_jobs[name]


def test_submit_status_complete_provision_variant(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    data = _dataset(tmp_path)
    submitted = _submit(runner, aws, data)
    assert submitted.exit_code == 0, submitted.output
    payload = _json(submitted)
    assert payload["already_submitted"] is False
    [upload] = payload["uploads"]
    assert upload["skipped"] is False and upload["bytes"] == data.stat().st_size

    # The job moto holds is the one we asked for, reading the object we uploaded.
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    key = upload["uri"].removeprefix(f"s3://{aws.bucket}/")
    assert key == f"jobs/data/{sha[:16]}/train.jsonl"
    head = aws.client("s3").head_object(Bucket=aws.bucket, Key=key)
    assert head["Metadata"]["strata-sha256"] == sha
    job = _job(aws, payload["job_name"])
    assert job.job_arn == payload["job_arn"]
    assert job.hyper_parameters == {"epochCount": "2"}
    assert job.client_request_token == payload["client_request_token"]
    assert job.customization_type == "FINE_TUNING" and job.base_model_identifier == NOVA
    assert job.training_data_config == {"s3Uri": upload["uri"]}
    assert job.role_arn == aws.role_arn

    status = runner.invoke(app, ["status", payload["job_arn"], "--json"])
    assert status.exit_code == 0, status.output
    assert _json(status)["job"]["status"] == "InProgress"

    early = runner.invoke(variants_app, ["add", "too-early", "--job", payload["job_arn"]])
    assert (
        early.exit_code == 1
        and "is InProgress; only a Completed job makes a variant" in early.stderr
    )

    job.status = "Completed"  # what Bedrock does when training ends
    # ...naming the model as Bedrock does (custom-model/BASE/ID; moto's ARN breaks that pattern).
    job.output_model_arn = aws.fake.add_custom_model(job.custom_model_name, NOVA)
    waited = runner.invoke(
        app, ["status", payload["job_arn"], "--wait", "--poll-interval", "0.1", "--json"]
    )
    assert waited.exit_code == 0, waited.output
    finished = _json(waited)["job"]
    assert (
        finished["status"] == "Completed" and finished["output_model_arn"] == job.output_model_arn
    )

    provisioned = runner.invoke(
        app,
        [
            "provision",
            "--model",
            job.output_model_arn,
            "--units",
            "1",
            "--yes",
            "--wait",
            "--poll-interval",
            "0.1",
            "--json",
        ],
    )
    assert provisioned.exit_code == 0, provisioned.output
    serving = _json(provisioned)["serving"]
    assert (
        serving["status"] == "InService"
        and serving["model_arn"] == job.output_model_arn
        and serving["units"] == 1
    )

    added = runner.invoke(variants_app, ["add", "ft-v1", "--job", payload["job_arn"], "--json"])
    assert added.exit_code == 0, added.output
    variant = _json(added)["variant"]
    assert variant["target"] == f"bedrock:{serving['arn']}"
    assert variant["model_arn"] == job.output_model_arn
    assert variant["base_model"] == NOVA and variant["method"] == "fine_tuning"
    assert variant["dataset_hash"] == f"sha256:{sha}"
    assert (
        variant["hyperparameters"] == {"epochCount": "2"}
        and variant["job_arn"] == payload["job_arn"]
    )
    stored = VariantStore(default_store_path()).get("ft-v1")
    assert stored is not None and stored.target == variant["target"]


def test_resubmitting_the_same_job_is_idempotent(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    data = _dataset(tmp_path)
    first = _json(_submit(runner, aws, data))
    second_result = _submit(runner, aws, data)
    assert second_result.exit_code == 0, second_result.output
    second = _json(second_result)
    assert second["job_arn"] == first["job_arn"] and second["already_submitted"] is True
    assert second["uploads"][0]["skipped"] is True
    assert list(aws.moto_bedrock().model_customization_jobs) == [first["job_name"]]
    assert len(aws.objects("jobs/")) == 1
    creates = [r for r in aws.fake.state.requests if r == ("POST", "/model-customization-jobs")]
    assert len(creates) == 1

    changed = _json(_submit(runner, aws, data, "--hp", "learningRate=0.00002"))
    assert changed["job_arn"] != first["job_arn"] and changed["already_submitted"] is False
    assert changed["uploads"][0]["skipped"] is True  # same data, new hyper-parameters
    assert len(aws.moto_bedrock().model_customization_jobs) == 2


def test_bad_hyperparameters_are_refused_before_any_aws_call(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    result = _submit(runner, aws, _dataset(tmp_path), "--hp", "learningRate=0.5")
    assert result.exit_code == 1
    assert _json(result) == {
        "ok": False,
        "error": "learningRate=0.5 is outside the allowed range 1e-06..0.0001",
    }
    assert aws.fake.state.requests == []
    assert aws.objects() == {} and aws.moto_bedrock().model_customization_jobs == {}


def test_bad_hyperparameters_are_refused_even_without_credentials(
    tmp_path: Path, runner: CliRunner
) -> None:
    args = ["submit", "--base", NOVA, "--data", str(_dataset(tmp_path)), "--output", "s3://b/x"]
    result = runner.invoke(
        app, [*args, "--role-arn", "arn:aws:iam::123456789012:role/r", "--hp", "epochs=3"]
    )
    assert result.exit_code == 1
    assert (
        "unknown hyper-parameter 'epochs' for nova (allowed: epochCount, learningRate"
        in result.stderr
    )
    assert "credentials" not in result.stderr


def test_invalid_data_is_refused_before_any_aws_call(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    data = _dataset(tmp_path)
    lines = data.read_text().splitlines()
    lines[3] = json.dumps({"messages": RECORD["messages"]})
    data.write_text("\n".join(lines) + "\n")
    result = _submit(runner, aws, data)
    assert result.exit_code == 1
    assert (
        "training data train.jsonl is not valid: line 4: missing key 'schemaVersion'"
        in _json(result)["error"]
    )
    assert aws.fake.state.requests == [] and aws.objects() == {}


def test_type_not_supported_by_family_is_refused(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    result = _submit(runner, aws, _dataset(tmp_path), "--type", "CONTINUED_PRE_TRAINING")
    assert result.exit_code == 1
    assert "Amazon Nova Micro does not support CONTINUED_PRE_TRAINING" in _json(result)["error"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing-role", "IAM role arn:aws:iam::123456789012:role/nobody does not exist"),
        ("untrusted-role", "IAM role lambda-only does not trust bedrock.amazonaws.com"),
        ("missing-bucket", "S3 bucket 'no-such-bucket' does not exist"),
        ("no-credentials", "no AWS credentials found"),
        (
            "pass-role-denied",
            "access denied on CreateModelCustomizationJob: "
            "User: arn:aws:iam::123456789012:user/dev",
        ),
    ],
)
def test_aws_errors_are_one_clear_line(
    case: str,
    expected: str,
    tmp_path: Path,
    aws: Aws,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role, output = aws.role_arn, f"s3://{aws.bucket}/jobs"
    if case == "missing-role":
        role = "arn:aws:iam::123456789012:role/nobody"
    elif case == "untrusted-role":
        trust = {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ]
        }
        role = aws.client("iam").create_role(
            RoleName="lambda-only", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
    elif case == "missing-bucket":
        output = "s3://no-such-bucket/jobs"
    elif case == "no-credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    else:
        aws.fake.deny(
            "POST",
            "/model-customization-jobs",
            "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
            f"iam:PassRole on resource: {role}",
        )
    args = [
        "submit",
        "--base",
        NOVA,
        "--data",
        str(_dataset(tmp_path)),
        "--output",
        output,
        "--role-arn",
        role,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert expected in error
    assert "Traceback" not in result.output and "testing" not in result.output


def test_list_stop_and_waiting_on_a_stopped_job(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    job = _json(_submit(runner, aws, _dataset(tmp_path)))
    listed = runner.invoke(app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [j["jobArn"] for j in _json(listed)["jobs"]] == [job["job_arn"]]
    stopped = runner.invoke(app, ["stop", job["job_arn"], "--json"])
    assert stopped.exit_code == 0, stopped.output
    assert _json(stopped)["job"]["status"] == "Stopped"
    waited = runner.invoke(app, ["status", job["job_arn"], "--wait", "--poll-interval", "0.1"])
    assert waited.exit_code == 1
    assert f"job {job['job_name']} was stopped before it finished" in waited.stderr


def test_wait_reports_the_failure_message(tmp_path: Path, aws: Aws, runner: CliRunner) -> None:
    job = _json(_submit(runner, aws, _dataset(tmp_path)))
    moto_job = _job(aws, job["job_name"])
    moto_job.status = "Failed"
    moto_job.failure_message = "Training data record 17 exceeds the maximum token count"
    result = runner.invoke(
        app, ["status", job["job_arn"], "--wait", "--poll-interval", "0.1", "--json"]
    )
    assert result.exit_code == 1
    payload = _json(result)
    assert payload["ok"] is False
    assert (
        payload["error"]
        == f"job {job['job_name']} failed: Training data record 17 exceeds the maximum token count"
        "; run the same submit again with --retry (or --name NEW_NAME) to start it over"
    )
    assert payload["job"]["status"] == "Failed"


def test_submit_wait_follows_the_job_until_moto_completes_it(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    data = _dataset(tmp_path)

    def complete_after_first_poll() -> None:
        # Flip the job once the CLI has polled it at least once (no timing assumptions).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            gets = [
                p
                for m, p in list(aws.fake.state.requests)
                if m == "GET" and p.startswith("/model-customization-jobs/")
            ]
            jobs = aws.moto_bedrock().model_customization_jobs
            if gets and jobs:
                next(iter(jobs.values())).status = "Completed"
                return
            time.sleep(0.01)

    flipper = threading.Thread(target=complete_after_first_poll)
    flipper.start()
    result = _submit(runner, aws, data, "--wait", "--poll-interval", "0.1")
    flipper.join()
    assert result.exit_code == 0, result.output
    payload = _json(result)
    assert payload["job"]["status"] == "Completed"
    gets = [
        p
        for m, p in aws.fake.state.requests
        if m == "GET" and p.startswith("/model-customization-jobs/")
    ]
    assert len(gets) >= 2  # the first found it running; a later one saw it finish


def test_progress_display_shows_substeps_elapsed_and_losses(aws: Aws, runner: CliRunner) -> None:
    base = {
        "jobArn": (
            "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/"
            "amazon.nova-micro-v1:0:128k/abcdefghijkl"
        ),
        "jobName": "nightly-ft",
        "outputModelName": "nightly-ft-model",
        "roleArn": aws.role_arn,
        "creationTime": time.time() - 125,
        "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:128k",
        "trainingDataConfig": {"s3Uri": "s3://b/train.jsonl"},
        "validationDataConfig": {"validators": []},
        "outputDataConfig": {"s3Uri": "s3://b/out"},
        "customizationType": "FINE_TUNING",
    }

    def details(validation: str, processing: str, training: str) -> dict[str, Any]:
        return {
            "validationDetails": {"status": validation},
            "dataProcessingDetails": {"status": processing},
            "trainingDetails": {"status": training},
        }

    aws.fake.script_job(
        "nightly-ft",
        [
            {
                **base,
                "status": "InProgress",
                "statusDetails": details("InProgress", "NotStarted", "NotStarted"),
            },
            {
                **base,
                "status": "InProgress",
                "statusDetails": details("Completed", "InProgress", "NotStarted"),
            },
            {
                **base,
                "status": "InProgress",
                "statusDetails": details("Completed", "Completed", "InProgress"),
                "trainingMetrics": {"trainingLoss": 1.2345},
                "validationMetrics": [{"validationLoss": 1.5}, {"validationLoss": 1.4321}],
            },
            {
                **base,
                "status": "Failed",
                "statusDetails": details("Completed", "Completed", "Failed"),
                "failureMessage": "Internal error during training; please retry",
                "endTime": time.time(),
            },
        ],
    )
    result = runner.invoke(app, ["status", "nightly-ft", "--wait", "--poll-interval", "0.1"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if "Status:" in line]
    assert len(lines) == 4
    assert "Validation: InProgress  Data processing: NotStarted  Training: NotStarted" in lines[0]
    assert "Elapsed: 0:02:0" in lines[0]
    assert "Training loss: 1.2345  Validation loss: 1.4321" in lines[2]
    assert "Status: Failed" in lines[3]
    assert (
        "error: job nightly-ft failed: Internal error during training; please retry"
        in result.stderr
    )


def test_region_and_profile_options_choose_where_calls_go(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    job = _json(_submit(runner, aws, _dataset(tmp_path)))
    here = runner.invoke(app, ["status", job["job_name"], "--region", "us-east-1", "--json"])
    assert here.exit_code == 0, here.output
    elsewhere = runner.invoke(app, ["status", job["job_name"], "--region", "eu-west-1"])
    assert elsewhere.exit_code == 1
    assert (
        f"not found (GetModelCustomizationJob): Model customization job {job['job_name']} not found"
        in elsewhere.stderr
    )
    unknown = runner.invoke(app, ["status", job["job_name"], "--profile", "no-such-profile"])
    assert unknown.exit_code == 1
    assert "AWS profile 'no-such-profile' not found in the AWS config files" in unknown.stderr
