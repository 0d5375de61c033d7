"""``strata tune … --on local``: the same search space, searched sequentially with Optuna.

Each trial is an ordinary local training run (its own folder under ``--out``) and its objective is
read from the run's report.json, so a trial is exactly what ``strata train`` would produce.
Optuna's TPE sampler is the Bayesian search here, as SageMaker's Bayesian strategy is there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from customize.errors import UsageError
from customize.sagemaker.search_space import Objective, ParamRange, Strategy


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    value: float | None
    folder: Path


def apply(settings: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The trainer's keyword arguments with one trial's values put in their place."""
    updated = dict(settings)
    lora, bottleneck = settings.get("lora"), settings.get("bottleneck")
    for name, value in params.items():
        if name in ("rank", "alpha", "dropout", "targets") and lora is not None:
            field_value = tuple(str(value).split(",")) if name == "targets" else value
            lora = replace(lora, **{name: field_value})
        elif name in ("reduction_factor", "style") and bottleneck is not None:
            bottleneck = replace(bottleneck, **{name: value})
        else:
            updated[name] = value
    if lora is not None:
        updated["lora"] = lora
    if bottleneck is not None:
        updated["bottleneck"] = bottleneck
    return updated


def objective_value(report: dict[str, Any], objective: Objective) -> float | None:
    if objective.metric == "eval_loss":
        value = report.get("best_eval_loss")
    else:
        curve = report.get("train_loss_curve") or []
        value = curve[-1][1] if curve else None
    return float(value) if value is not None else None


def search(
    settings: dict[str, Any],
    params: tuple[ParamRange, ...],
    objective: Objective,
    *,
    max_jobs: int,
    strategy: Strategy,
    seed: int,
    train: Callable[[dict[str, Any]], dict[str, Any]],
    on_trial: Callable[[Trial], None] = lambda _: None,
) -> list[Trial]:
    """Runs ``max_jobs`` trials one after another; returns them in the order they ran."""
    import optuna

    if strategy == "hyperband":
        raise UsageError(
            "--strategy hyperband runs on SageMaker only; use bayesian or random with --on local"
        )
    if objective.metric == "eval_loss" and settings.get("eval_data") is None:
        raise UsageError("--objective eval_loss needs evaluation data (--eval)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(4, max_jobs))
        if strategy == "bayesian"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    study = optuna.create_study(
        direction="minimize" if objective.minimize else "maximize", sampler=sampler
    )
    root = Path(settings["out"])
    trials: list[Trial] = []

    def run(trial: optuna.Trial) -> float:
        values: dict[str, Any] = {}
        for p in params:
            if p.kind == "categorical":
                values[p.name] = trial.suggest_categorical(p.name, list(p.choices))
            elif p.kind == "int":
                values[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
            else:
                values[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
        folder = root / f"trial-{trial.number:03d}"
        report = train(apply({**settings, "out": folder}, values))
        value = objective_value(report, objective)
        done = Trial(trial.number, values, value, folder)
        trials.append(done)
        on_trial(done)
        if value is None:
            raise optuna.TrialPruned("the run reported no objective value")
        return value

    study.optimize(run, n_trials=max_jobs)
    root.mkdir(parents=True, exist_ok=True)
    (root / "tuning.json").write_text(
        json.dumps(
            {
                "objective": {"metric": objective.metric, "minimize": objective.minimize},
                "strategy": strategy,
                "trials": [
                    {
                        "number": t.number,
                        "params": t.params,
                        "value": t.value,
                        "folder": str(t.folder),
                    }
                    for t in trials
                ],
            },
            indent=2,
        )
        + "\n"
    )
    return trials


def leaderboard(trials: list[Trial], minimize: bool) -> list[Trial]:
    scored = [t for t in trials if t.value is not None]
    return sorted(scored, key=lambda t: (t.value or 0.0) * (1 if minimize else -1))
