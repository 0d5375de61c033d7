"""``strata tune lora``: the HPO request in moto, the leaderboard, and the local Optuna search."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters_local.data.tasks import NEW_TASKS, make_items, to_jsonl_record


def test_the_tuning_request_is_right_in_moto_and_status_ranks_the_jobs(
    cli: Any, aws: Any, data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    args = [
        "tune",
        "lora",
        "--data",
        str(data_files[0]),
        "--eval",
        str(data_files[1]),
        "--out",
        str(tmp_path / "t"),
        "--steps",
        "50",
        "--objective",
        "eval_loss:min",
        "--param",
        "r=4..64:int:log",
        "--param",
        "lr=1e-5..1e-3:log",
        "--max-jobs",
        "12",
        "--parallel",
        "3",
        "--strategy",
        "bayesian",
        "--early-stopping",
        "auto",
        "--on",
        "sagemaker",
        "--instance-type",
        "ml.g5.xlarge",
        "--role-arn",
        aws.role_arn,
        "--output",
        f"s3://{aws.bucket}/hpo",
        "--job-name",
        "strata-hpo-test",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    job = aws.client("sagemaker").describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="strata-hpo-test"
    )  # answered by moto: the fake forwards tuning calls
    config = job["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Minimize",
        "MetricName": "eval_loss",
    }
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["ParameterRanges"] == {
        "IntegerParameterRanges": [
            {"Name": "rank", "MinValue": "4", "MaxValue": "64", "ScalingType": "Logarithmic"}
        ],
        "ContinuousParameterRanges": [
            {"Name": "lr", "MinValue": "1e-05", "MaxValue": "0.001", "ScalingType": "Logarithmic"}
        ],
    }
    definition = job["TrainingJobDefinition"]
    static = definition["StaticHyperParameters"]
    assert "rank" not in static and "lr" not in static  # tuned names leave the static set
    assert static["steps"] == "50" and static["sagemaker_program"] == "entry.py"
    metrics = {m["Name"] for m in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    assert "eval_loss" in metrics  # the objective is one the job reports
    assert definition["RoleArn"] == aws.role_arn

    for name, rank, value in (("a", "8", 1.5), ("b", "32", 0.75), ("c", "4", 2.0)):
        aws.fake.add_tuning_child("strata-hpo-test", f"hpo-{name}", {"rank": rank}, value)
    status = CliRunner().invoke(cli, ["tune", "status", "strata-hpo-test", "--json"])
    assert status.exit_code == 0, status.output
    ranked = [row["TrainingJobName"] for row in json.loads(status.output)["jobs"]]
    assert ranked == ["hpo-b", "hpo-a", "hpo-c"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "hyperband", "--early-stopping", "auto"], "does not combine"),
        (["--param", "lr=0..1e-3:log"], "a log scale needs LOW above 0"),
        (["--param", "bogus=1..2"], "cannot be tuned for lora"),
        (["--parallel", "20"], "--parallel must be between 1 and --max-jobs"),
    ],
)
def test_bad_tuning_inputs_are_refused_before_any_aws_call(
    cli: Any,
    aws: Any,
    data_files: tuple[Path, Path],
    tmp_path: Path,
    extra: list[str],
    message: str,
) -> None:
    args = [
        "tune",
        "lora",
        "--data",
        str(data_files[0]),
        "--eval",
        str(data_files[1]),
        "--out",
        str(tmp_path / "t"),
        "--param",
        "r=4..64:int",
        "--max-jobs",
        "4",
        "--on",
        "sagemaker",
        "--role-arn",
        aws.role_arn,
        "--output",
        f"s3://{aws.bucket}/hpo",
        *extra,
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert aws.fake.requests == [] and aws.keys() == []


@pytest.mark.slow
def test_local_optuna_search_improves_on_its_first_trial(cli: Any, tmp_path: Path) -> None:
    task = next(iter(NEW_TASKS.values()))
    items = make_items([task], 36, seed=3)
    train, evaluation = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    train.write_text("".join(json.dumps(to_jsonl_record(i)) + "\n" for i in items[:32]))
    evaluation.write_text("".join(json.dumps(to_jsonl_record(i)) + "\n" for i in items[32:]))
    args = [
        "tune",
        "lora",
        "--data",
        str(train),
        "--eval",
        str(evaluation),
        "--out",
        str(tmp_path / "t"),
        "--steps",
        "4",
        "--row-len",
        "128",
        "--rows-per-step",
        "4",
        "--eval-every",
        "4",
        "--param",
        "lr=1e-4..1e-1:log",
        "--param",
        "r=2..16:int:log",
        "--max-jobs",
        "3",
        "--strategy",
        "random",
        "--seed",
        "0",
        "--on",
        "local",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    trials = json.loads((tmp_path / "t" / "tuning.json").read_text())["trials"]
    assert len(trials) == 3
    first, best = trials[0]["value"], min(t["value"] for t in trials)
    assert best < first
    for trial in trials:  # each trial's value is its own run's best eval loss
        report = json.loads((Path(trial["folder"]) / "report.json").read_text())
        assert report["best_eval_loss"] == trial["value"]
