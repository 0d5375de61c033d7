"""``strata tune lora`` (SageMaker HPO or local Optuna) and ``strata tune status`` (leaderboard)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from customize.aws import AwsContext
from customize.commands.common import (
    JsonOut,
    Profile,
    Region,
    emit_json,
    finish,
    note,
    out,
    reported_errors,
)
from customize.errors import UsageError
from customize.sagemaker.options import RemoteOptions, with_remote_options

tune_app = typer.Typer(
    help="Hyper-parameter search: SageMaker HPO, or Optuna locally.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
Params = Annotated[
    list[str],
    typer.Option("--param", help="NAME=LOW..HIGH[:int][:log] or NAME=A|B (repeatable)."),
]


@tune_app.command("lora")
@with_remote_options
def tune_lora(
    data: Annotated[Path, typer.Option(help="Training JSONL.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for local trials and tuning.json.")
    ],
    param: Params,
    eval_data: Annotated[Path | None, typer.Option("--eval", help="Evaluation JSONL.")] = None,
    base: Annotated[
        str, typer.Option(help='"builtin", a model folder, or s3:// (SageMaker).')
    ] = "builtin",
    objective: Annotated[
        str, typer.Option(help="METRIC:min|max (eval_loss or loss).")
    ] = "eval_loss:min",
    max_jobs: Annotated[int, typer.Option("--max-jobs", help="Trials in all.")] = 12,
    parallel: Annotated[int, typer.Option("--parallel", help="SageMaker: trials at once.")] = 3,
    strategy: Annotated[str, typer.Option(help="bayesian, random or hyperband.")] = "bayesian",
    early_stopping: Annotated[str, typer.Option("--early-stopping", help="auto or off.")] = "off",
    steps: Annotated[int | None, typer.Option(help="Optimizer steps per trial.")] = None,
    epochs: Annotated[float, typer.Option(help="Passes per trial (ignored with --steps).")] = 1.0,
    row_len: Annotated[int, typer.Option(help="Tokens per packed row.")] = 512,
    rows_per_step: Annotated[int, typer.Option(help="Packed rows per step.")] = 8,
    eval_every: Annotated[int, typer.Option(help="Steps between evaluations.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the trainer and the sampler.")] = 0,
    remote: RemoteOptions | None = None,
) -> None:
    """Search LoRA hyper-parameters for the lowest eval loss."""
    from adapters_local.training.settings import LoraOptions
    from customize.sagemaker.request import TuningSpec, check_tuning
    from customize.sagemaker.search_space import STRATEGIES, parse_objective, parse_params

    assert remote is not None
    with reported_errors(remote.as_json):
        if strategy not in STRATEGIES:
            raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}")
        if early_stopping not in ("auto", "off"):
            raise UsageError("--early-stopping must be auto or off")
        spec = TuningSpec(
            objective=parse_objective(objective),
            params=parse_params(param, "lora"),
            max_jobs=max_jobs,
            parallel=parallel,
            strategy=strategy,
            early_stopping=early_stopping == "auto",
        )
        check_tuning(spec)
        settings: dict[str, Any] = {
            "method": "lora",
            "base": base,
            "data": data,
            "eval_data": eval_data,
            "out": out_dir,
            "lora": LoraOptions(),
            "epochs": epochs,
            "steps": steps,
            "lr": 2e-4,
            "row_len": row_len,
            "rows_per_step": rows_per_step,
            "eval_every": eval_every,
            "seed": seed,
        }
        if remote.on == "sagemaker":
            _tune_sagemaker(settings, spec, remote)
        else:
            _tune_local(settings, spec, seed, remote.as_json)


def _tune_local(settings: dict[str, Any], spec: Any, seed: int, as_json: bool) -> None:
    from adapters_local.training.loop import train
    from adapters_local.training.settings import TrainSettings
    from customize.sagemaker.tune_local import leaderboard, search

    def run(kwargs: dict[str, Any]) -> dict[str, Any]:
        return train(TrainSettings(**kwargs))

    trials = search(
        settings,
        spec.params,
        spec.objective,
        max_jobs=spec.max_jobs,
        strategy=spec.strategy,
        seed=seed,
        train=run,
        on_trial=lambda t: note(f"trial {t.number}: {t.params} → {t.value}", as_json=as_json),
    )
    ranked = leaderboard(trials, spec.objective.minimize)
    if as_json:
        emit_json(
            {
                "ok": True,
                "trials": [t.__dict__ for t in trials],
                "best": ranked[0].__dict__ if ranked else None,
            }
        )
        return
    table = Table("Rank", "Trial", spec.objective.metric, "Parameters", "Folder")
    for rank, t in enumerate(ranked, start=1):
        table.add_row(
            str(rank),
            str(t.number),
            f"{t.value:.5g}",
            ", ".join(f"{k}={v}" for k, v in t.params.items()),
            str(t.folder),
        )
    out().print(table)


def _tune_sagemaker(settings: dict[str, Any], spec: Any, remote: RemoteOptions) -> None:
    from customize.sagemaker import clients
    from customize.sagemaker.launch import compute_of, prepare
    from customize.sagemaker.request import tuning_job_request
    from customize.sagemaker.submit import preflight, upload_all
    from customize.tokens import request_token

    job = prepare(settings, remote)
    aws, region, hps, staged = job.aws, job.region, job.hps, job.staged
    token = request_token(
        {"hps": hps, "spec": repr(spec), "uploads": [u.sha256 for u in staged.uploads]}
    )
    name = remote.job_name or f"strata-hpo-{token[:12]}"
    request = tuning_job_request(
        name=name,
        region=region,
        role_arn=remote.role_arn,
        compute=compute_of(remote),
        inputs=staged.inputs,
        hyperparameters=hps,
        tuning=spec,
    )
    assert remote.role_arn is not None
    for line in preflight(aws.s3, aws.iam, staged, region, remote.role_arn):
        note(line, as_json=remote.as_json)
    upload_all(aws.s3, staged, lambda step: note(step, as_json=remote.as_json))
    shutil.rmtree(staged.workdir, ignore_errors=True)
    arn = clients.sagemaker(aws).create_hyper_parameter_tuning_job(**request)[
        "HyperParameterTuningJobArn"
    ]
    if not remote.as_json:
        out().print(arn)
    finish({"tuning_job_arn": arn, "tuning_job_name": name}, None, remote.as_json)


def leaderboard_rows(sagemaker: Any, name: str) -> list[dict[str, Any]]:
    jobs = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", SortOrder="Ascending"
    ).get("TrainingJobSummaries", [])
    return [dict(j) for j in jobs]


@tune_app.command("status")
def tune_status(
    name: Annotated[str, typer.Argument(help="Tuning job name or ARN.")],
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """A tuning job's status and its leaderboard of training jobs, best first."""
    from customize.sagemaker import clients

    with reported_errors(as_json):
        sagemaker = clients.sagemaker(AwsContext(region, profile))
        short = name.rsplit("/", 1)[-1]
        job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=short)
        rows = leaderboard_rows(sagemaker, short)
        objective = job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        if objective["Type"] == "Maximize":
            rows.reverse()
        if as_json:
            emit_json({"ok": True, "status": job["HyperParameterTuningJobStatus"], "jobs": rows})
            return
        out().print(
            f"{short}: {job['HyperParameterTuningJobStatus']}  "
            f"objective {objective['MetricName']} ({objective['Type'].lower()})"
        )
        table = Table("Rank", "Training job", "Status", objective["MetricName"], "Hyper-parameters")
        for rank, row in enumerate(rows, start=1):
            value = row.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
            table.add_row(
                str(rank),
                str(row["TrainingJobName"]),
                str(row["TrainingJobStatus"]),
                "-" if value is None else f"{value:.5g}",
                ", ".join(f"{k}={v}" for k, v in row.get("TunedHyperParameters", {}).items()),
            )
        out().print(table)
