"""Issue 13: submitting jobs the way AWS checks them (items 2, 3, 5, 9, 10, 11, 12, 13).

moto holds the jobs and S3; the loopback fake answers what moto lacks. Every request goes through
the real boto3 client; ``aws.fake.state.bodies`` is what reached the Bedrock endpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from customize.cli import app
from tests.customize.customize_test_env import Aws

NOVA = "amazon.nova-micro-v1:0:128k"
TITAN = "amazon.titan-text-lite-v1:0:4k"
LLAMA_31 = "meta.llama3-1-8b-instruct-v1:0:128k"
PC = {"prompt": "Capital of France?", "completion": "Paris."}
CHAT = {
    "schemaVersion": "bedrock-conversation-2024",
    "messages": [
        {"role": "user", "content": [{"text": "Capital of France?"}]},
        {"role": "assistant", "content": [{"text": "Paris."}]},
    ],
}


def _write(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _submit(runner: CliRunner, aws: Aws, base: str, *extra: str) -> Result:
    args = ["submit", "--base", base, "--output", f"s3://{aws.bucket}/jobs"]
    return runner.invoke(app, [*args, "--role-arn", aws.role_arn, "--json", *extra])


def _json(result: Result) -> Any:
    assert result.stdout.strip(), result.output
    return json.loads(result.stdout)


def _creates(aws: Aws) -> list[dict[str, Any]]:
    return [
        b for m, p, b in aws.fake.state.bodies if m == "POST" and p == "/model-customization-jobs"
    ]


def _error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    return str(_json(result)["error"])


# Item 2 -------------------------------------------------------------------------------------


def test_item2_small_validation_set_is_submitted(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    train = _write(tmp_path / "train.jsonl", [{**PC, "prompt": f"q{i}"} for i in range(32)])
    val = _write(tmp_path / "val.jsonl", [PC] * 5)
    result = _submit(runner, aws, TITAN, "--data", str(train), "--validation", str(val))
    assert result.exit_code == 0, result.output
    [create] = _creates(aws)
    assert len(create["validationDataConfig"]["validators"]) == 1


def test_item2_record_maximum_counts_training_and_validation_together(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    train = _write(tmp_path / "train.jsonl", [PC] * 9998)
    val = _write(tmp_path / "val.jsonl", [PC] * 5)
    error = _error(_submit(runner, aws, TITAN, "--data", str(train), "--validation", str(val)))
    assert "9998 training + 5 validation = 10003 records, more than the maximum of 10000" in error
    assert _creates(aws) == [] and aws.objects() == {}


# Item 3 (estimate) --------------------------------------------------------------------------


def test_item3_estimate_counts_tokens_times_epochs_times_price(
    tmp_path: Path, runner: CliRunner
) -> None:
    from customize.catalog import prices

    train = _write(tmp_path / "train.jsonl", [CHAT] * 10)
    result = runner.invoke(
        app, ["estimate", "--base", NOVA, "--data", str(train), "--hp", "epochCount=3", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = _json(result)
    tokens = payload["estimated_tokens"]
    rate = prices().training_per_1k_tokens["nova-micro"]
    assert tokens > 0
    assert payload["estimate"]["training_usd"] == pytest.approx(tokens * 3 / 1000 * rate)
    assert payload["estimate"]["confirmed"] is False  # the table says it was not confirmed
    assert any("NOT confirmed" in line for line in payload["estimate"]["lines"])


def test_item3_submit_prints_the_estimate_before_starting(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    train = _write(tmp_path / "train.jsonl", [CHAT] * 10)
    args = ["submit", "--base", NOVA, "--data", str(train), "--output", f"s3://{aws.bucket}/j"]
    result = runner.invoke(app, [*args, "--role-arn", aws.role_arn])
    assert result.exit_code == 0, result.output
    estimate = result.stderr.index("estimate: training: about")
    assert estimate < result.stderr.index("uploading training data")
    assert "storage of the custom model" in result.stderr


# Item 9 -------------------------------------------------------------------------------------


def test_item9_missing_s3_data_is_refused_before_any_job(aws: Aws, runner: CliRunner) -> None:
    error = _error(_submit(runner, aws, NOVA, "--data", f"s3://{aws.bucket}/missing.jsonl"))
    assert error == f"training data s3://{aws.bucket}/missing.jsonl does not exist"
    assert _creates(aws) == []


def test_item9_s3_data_is_streamed_through_validation(aws: Aws, runner: CliRunner) -> None:
    s3 = aws.client("s3")
    body = "".join(json.dumps(CHAT) + "\n" for _ in range(9)) + '{"schemaVersion": 1}\n'
    s3.put_object(Bucket=aws.bucket, Key="data/train.jsonl", Body=body.encode())
    error = _error(_submit(runner, aws, NOVA, "--data", f"s3://{aws.bucket}/data/train.jsonl"))
    assert error.startswith(
        f"training data s3://{aws.bucket}/data/train.jsonl is not valid: line 10:"
    )
    assert _creates(aws) == []
    s3.put_object(Bucket=aws.bucket, Key="data/good.jsonl", Body=body.rsplit("{", 1)[0].encode())
    ok = _submit(runner, aws, NOVA, "--data", f"s3://{aws.bucket}/data/good.jsonl")
    assert ok.exit_code == 0, ok.output
    assert _creates(aws)[0]["trainingDataConfig"] == {"s3Uri": f"s3://{aws.bucket}/data/good.jsonl"}


# Item 10 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--name", "my.job"], "customModelName 'my.job-model' does not match the pattern"),
        (["--name", "a" * 60], "customModelName is 66 characters, more than the 63 allowed"),
        (["--model-name", "bad name"], "customModelName 'bad name' does not match the pattern"),
        (
            ["--tag", "k" * 200 + "=v"],
            "jobTags[0].key is 200 characters, more than the 128 allowed",
        ),
    ],
)
def test_item10_names_bedrock_would_refuse_fail_before_upload(
    tmp_path: Path, aws: Aws, runner: CliRunner, extra: list[str], fragment: str
) -> None:
    train = _write(tmp_path / "train.jsonl", [CHAT] * 10)
    error = _error(_submit(runner, aws, NOVA, "--data", str(train), *extra))
    assert error.startswith("CreateModelCustomizationJob would be refused: ") and fragment in error
    assert aws.objects() == {} and _creates(aws) == []


def test_item10_file_name_outside_the_s3_key_pattern_fails_before_upload(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    train = _write(tmp_path / "my data.jsonl", [CHAT] * 10)
    error = _error(_submit(runner, aws, NOVA, "--data", str(train)))
    assert "trainingDataConfig.s3Uri" in error and "my data.jsonl" in error
    assert "rename files to match" in error
    assert aws.objects() == {} and _creates(aws) == []


# Item 11 ------------------------------------------------------------------------------------


def test_item11_failed_job_is_retried_with_retry(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    train = _write(tmp_path / "train.jsonl", [CHAT] * 10)
    first = _json(_submit(runner, aws, NOVA, "--data", str(train)))
    moto_job = aws.moto_bedrock().model_customization_jobs[first["job_name"]]
    moto_job.status, moto_job.failure_message = "Failed", "Internal error"

    again = _error(_submit(runner, aws, NOVA, "--data", str(train)))
    assert again == (
        f"job {first['job_name']} already ran with these inputs and ended Failed (Internal error); "
        f"pass --retry to run it again as {first['job_name']}-r1, or --name NEW_NAME"
    )
    retried = _json(_submit(runner, aws, NOVA, "--data", str(train), "--retry"))
    assert retried["job_name"] == f"{first['job_name']}-r1" and retried["attempt"] == 1
    assert retried["already_submitted"] is False
    assert [c["jobName"] for c in _creates(aws)] == [first["job_name"], retried["job_name"]]
    # The same command again finds the running retry instead of starting a third job.
    same = _json(_submit(runner, aws, NOVA, "--data", str(train), "--retry"))
    assert same["job_arn"] == retried["job_arn"] and same["already_submitted"] is True
    assert len(_creates(aws)) == 2


def test_item11_stopped_job_says_how_to_retry(tmp_path: Path, aws: Aws, runner: CliRunner) -> None:
    train = _write(tmp_path / "train.jsonl", [CHAT] * 10)
    job = _json(_submit(runner, aws, NOVA, "--data", str(train)))
    runner.invoke(app, ["stop", job["job_arn"]])
    waited = runner.invoke(app, ["status", job["job_arn"], "--wait", "--poll-interval", "0.1"])
    assert waited.exit_code == 1 and "--retry" in waited.stderr
    error = _error(_submit(runner, aws, NOVA, "--data", str(train)))
    assert "ended Stopped" in error and "--retry" in error


# Item 13 ------------------------------------------------------------------------------------


def test_item13_kms_tags_vpc_and_several_validators_reach_bedrock(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    train = _write(tmp_path / "train.jsonl", [CHAT] * 10)
    vals = [_write(tmp_path / f"val{i}.jsonl", [CHAT]) for i in range(3)]
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    result = _submit(
        runner, aws, NOVA, "--data", str(train),
        *[arg for v in vals for arg in ("--validation", str(v))],
        "--kms-key", key, "--tag", "team=ml", "--model-tag", "stage=dev",
        "--subnet", "subnet-0123456789abcdef0", "--security-group", "sg-0123456789abcdef0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [create] = _creates(aws)
    assert create["customModelKmsKeyId"] == key
    assert create["jobTags"] == [{"key": "team", "value": "ml"}]
    assert create["customModelTags"] == [{"key": "stage", "value": "dev"}]
    assert create["vpcConfig"] == {
        "subnetIds": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]
    }  # fmt: skip
    assert len(create["validationDataConfig"]["validators"]) == 3


def test_item13_more_than_ten_validators_refused(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    train = _write(tmp_path / "train.jsonl", [CHAT] * 10)
    val = _write(tmp_path / "val.jsonl", [CHAT])
    error = _error(
        _submit(runner, aws, NOVA, "--data", str(train), *["--validation", str(val)] * 11)
    )
    assert "at most 10 --validation datasets, got 11" in error


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--status", "running"],
        [
            "submit",
            "--type",
            "finetune",
            "--base",
            NOVA,
            "--data",
            "x",
            "--output",
            "s3://b/x",
            "--role-arn",
            "r",
        ],
        ["provision", "--model", "m", "--units", "1", "--commitment", "1month"],
        ["status", "job", "--poll-interval", "0"],
    ],
    ids=["list-status", "type", "commitment", "poll-interval"],
)
def test_item13_free_text_choices_and_zero_poll_interval_are_refused(
    runner: CliRunner, args: list[str]
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output  # a usage error, before any AWS call
    assert "Invalid value" in result.output


def test_item13_job_status_choices_match_botocore() -> None:
    from typing import get_args

    from customize.commands.jobs_cmd import JobStatus
    from customize.shapes import enum_values

    assert set(get_args(JobStatus)) == set(enum_values("bedrock", "FineTuningJobStatus"))


def test_item13_submit_status_import_provision_all_default_to_no_wait() -> None:
    import typer

    group = typer.main.get_group(app)
    for path in (["submit"], ["status"], ["import"], ["provision"], ["imports", "status"]):
        command: Any = group
        for part in path:
            command = command.commands[part]
        [wait] = [p for p in command.params if p.name == "wait"]
        assert wait.default is False, path


# Item 5 (jobs side) -------------------------------------------------------------------------


def test_item5_distillation_from_invocation_logs(aws: Aws, runner: CliRunner) -> None:
    aws.client("s3").put_object(Bucket=aws.bucket, Key="logs/2026/12/01/a.json.gz", Body=b"x")
    teacher = "us.amazon.nova-pro-v1:0"
    result = _submit(
        runner, aws, NOVA, "--type", "DISTILLATION", "--teacher", teacher,
        "--invocation-logs", f"s3://{aws.bucket}/logs/",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [create] = _creates(aws)
    assert create["trainingDataConfig"] == {
        "invocationLogsConfig": {
            "usePromptResponse": False,
            "invocationLogSource": {"s3Uri": f"s3://{aws.bucket}/logs/"},
        }
    }
    assert create["customizationConfig"]["distillationConfig"]["teacherModelConfig"] == {
        "teacherModelIdentifier": teacher
    }
    missing = _submit(
        runner, aws, NOVA, "--type", "DISTILLATION", "--teacher", teacher,
        "--invocation-logs", f"s3://{aws.bucket}/nothing/",
    )  # fmt: skip
    assert _error(missing) == f"no invocation logs under s3://{aws.bucket}/nothing/"


def test_item5_teacher_must_teach_the_student(tmp_path: Path, aws: Aws, runner: CliRunner) -> None:
    prompts = _write(tmp_path / "p.jsonl", [{**CHAT, "messages": CHAT["messages"][:1]}] * 100)
    error = _error(
        _submit(
            runner,
            aws,
            NOVA,
            "--type",
            "DISTILLATION",
            "--teacher",
            "meta.llama3-1-405b-instruct-v1:0",
            "--data",
            str(prompts),
        )
    )
    assert "cannot distill into Amazon Nova Micro" in error and _creates(aws) == []


# Item 12 ------------------------------------------------------------------------------------

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:grader"


def test_item12_rft_with_a_lambda_grader(tmp_path: Path, aws: Aws, runner: CliRunner) -> None:
    prompts = _write(tmp_path / "p.jsonl", [{**CHAT, "messages": CHAT["messages"][:1]}] * 10)
    base = "amazon.nova-2-lite-v1:0:256k"
    result = _submit(
        runner, aws, base, "--type", "rft", "--grader-lambda", LAMBDA, "--data", str(prompts),
        "--hp", "epochCount=2", "--hp", "batchSize=16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [create] = _creates(aws)
    assert create["customizationType"] == "REINFORCEMENT_FINE_TUNING"
    assert create["customizationConfig"] == {
        "rftConfig": {
            "graderConfig": {"lambdaGrader": {"lambdaArn": LAMBDA}},
            "hyperParameters": {"epochCount": 2, "batchSize": 16},
        }
    }
    assert "hyperParameters" not in create


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ([], "REINFORCEMENT_FINE_TUNING needs --grader-lambda LAMBDA_ARN"),
        (["--grader-lambda", "arn:aws:lambda:us-east-1:1:function:g"], "lambdaArn"),
        (
            ["--grader-lambda", LAMBDA, "--hp", "batchSize=8"],
            "batchSize is 8, below the minimum 16",
        ),
        (["--grader-lambda", LAMBDA, "--hp", "epochs=2"], "unknown RFT hyper-parameter 'epochs'"),
    ],
)
def test_item12_rft_settings_are_checked_before_any_call(
    tmp_path: Path, aws: Aws, runner: CliRunner, extra: list[str], fragment: str
) -> None:
    prompts = _write(tmp_path / "p.jsonl", [{**CHAT, "messages": CHAT["messages"][:1]}] * 10)
    base = "amazon.nova-2-lite-v1:0:256k"
    error = _error(_submit(runner, aws, base, "--type", "rft", "--data", str(prompts), *extra))
    assert fragment in error
    assert _creates(aws) == [] and aws.objects() == {}


def test_item12_rft_refused_for_models_without_it(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    prompts = _write(tmp_path / "p.jsonl", [CHAT] * 10)
    error = _error(
        _submit(
            runner, aws, NOVA, "--type", "rft", "--grader-lambda", LAMBDA, "--data", str(prompts)
        )
    )
    assert "Amazon Nova Micro does not support REINFORCEMENT_FINE_TUNING" in error
