"""One experiment's report from the ledger and the ratings: per-arm figures, the
candidate - control comparison, the SRM check, guardrails and the verdict.

Reads the database (synchronous; run it off the event loop); all arithmetic is in ``stats``.
The outcome is the rating of a request (``score``, or ``label`` up = 1 / down = 0); requests
without a rating count for traffic, errors, latency and cost but not for the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.accounting.store import Database
from gateway.experiments import stats
from gateway.pipeline.experiments import Experiment

_ROWS = (
    "SELECT l.variant, l.status, l.latency_ms, l.cost_pusd, f.score, l.ts "
    "FROM ledger l LEFT JOIN feedback f ON f.request_id = l.request_id "
    "WHERE l.experiment = ? AND l.variant IS NOT NULL AND l.ts >= ? ORDER BY l.ts, l.request_id"
)


@dataclass(frozen=True)
class RatioWindow:
    """Where the sample-ratio check looks: the records of one stretch of constant weights
    (counts from a ramp's or a re-weighting's earlier weights would read as a broken split)."""

    start: float
    end: float
    weights: dict[str, float]


def running_window(events: Sequence[dict[str, Any]]) -> RatioWindow | None:
    """The latest stretch the experiment ran at constant weights, from its decision record
    (``store.events``): from the last event that left it running to the next event, if any."""
    window: RatioWindow | None = None
    for event in events:
        if window is not None and window.end == float("inf"):
            window = RatioWindow(window.start, event["ts"], window.weights)
        if event["status"] == "running":
            window = RatioWindow(event["ts"], float("inf"), dict(event["weights"]))
    return window


@dataclass(frozen=True)
class ReportOptions:
    control: str | None = None  # default: the arm named "control", else the first arm
    candidate: str | None = None  # default: the first other arm
    guardrails: Sequence[str] = ()
    alpha: float = stats.DEFAULT_ALPHA
    min_samples: int = 100
    since: float = 0.0
    ratio_window: RatioWindow | None = None  # default: every record, at the weights now


def arms_of(experiment: Experiment, options: ReportOptions) -> tuple[str, str]:
    """(control, candidate); ValueError naming the option when one is not an arm."""
    names = list(experiment.arms)
    control = options.control or ("control" if "control" in names else names[0])
    others = [n for n in names if n != control]
    candidate = options.candidate or (others[0] if others else "")
    for option, name in (("control", control), ("candidate", candidate)):
        if name not in experiment.arms:
            raise ValueError(
                f"{option}: {name!r} is not a variant of {experiment.alias!r}; "
                f"variants are {', '.join(names)}"
            )
    if control == candidate:
        raise ValueError("candidate: must differ from control")
    return control, candidate


def report(db: Database, experiment: Experiment, options: ReportOptions) -> dict[str, Any]:
    rails = [stats.Guardrail.parse(g) for g in options.guardrails]
    control, candidate = arms_of(experiment, options)
    rows = db.query(_ROWS, (experiment.name, options.since))
    nan = float("nan")
    by_arm: dict[str, list[tuple[float, float, float]]] = {name: [] for name in experiment.arms}
    rated: list[tuple[str, float]] = []  # (arm, outcome) in arrival order
    window = options.ratio_window
    in_window = dict.fromkeys(experiment.arms, 0)
    for variant, status, latency, cost, score, ts in rows:
        if variant not in by_arm:
            continue  # an arm since removed from the config
        if window is not None and window.start <= ts < window.end:
            in_window[variant] += 1
        by_arm[variant].append(
            (
                float(status >= 400),
                nan if latency is None else float(latency),
                nan if cost is None else int(cost) / 1e12,
            )
        )
        if score is not None:
            rated.append((variant, float(score)))

    def data(name: str) -> stats.ArmData:
        values = np.asarray(by_arm[name], dtype=float).reshape(-1, 3)
        return stats.ArmData.of(values[:, 0], values[:, 1], values[:, 2])

    def outcomes(name: str) -> np.ndarray:
        return np.asarray([v for arm, v in rated if arm == name], dtype=float)

    summaries = {}
    for name in experiment.arms:
        d = data(name)
        summaries[name] = stats.summarize(
            name,
            errors=d.errors,
            latencies_ms=d.latencies_ms,
            costs_usd=d.costs_usd,
            outcomes=outcomes(name),
            alpha=options.alpha,
        )
    pair = [(arm, v) for arm, v in rated if arm in (control, candidate)]
    diff = stats.difference(
        outcomes(control),
        outcomes(candidate),
        order=[arm == candidate for arm, _ in pair],
        alpha=options.alpha,
    )
    if window is None:
        srm = stats.sample_ratio({n: s.n for n, s in summaries.items()}, experiment.weights)
    else:
        srm = stats.sample_ratio(in_window, window.weights)
    guards = [
        stats.check_guardrail(r, data(control), data(candidate), alpha=options.alpha) for r in rails
    ]
    decision = stats.verdict(
        srm,
        guards,
        diff,
        summaries[control],
        summaries[candidate],
        alpha=options.alpha,
        min_samples=options.min_samples,
    )
    return {
        "experiment": experiment.name,
        "control": control,
        "candidate": candidate,
        "weights": experiment.weights,
        "alpha": options.alpha,
        "min_samples": options.min_samples,
        "test": "mSPRT (normal mixture), always-valid p-value and confidence sequence",
        "verdict": {
            "kind": decision.kind,
            "text": decision.text,
            "more_samples_per_arm": decision.more_samples_per_arm,
        },
        "arms": [summaries[name].as_json() for name in experiment.arms],
        "difference": diff.as_json() if diff else None,
        "sample_ratio": srm.as_json(),
        "guardrails": [g.as_json() for g in guards],
    }
