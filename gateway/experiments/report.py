"""One experiment's report from the ledger and the ratings: per-arm figures, the
candidate - control comparison, the SRM check, guardrails and the verdict.

Reads the database (synchronous; run it off the event loop); all arithmetic is in ``stats``.
The outcome is the rating of a request (``score``, or ``label`` up = 1 / down = 0), or with
``metric="grader:NAME"`` that grader's score; requests without one count for traffic, errors,
latency and cost but not for the outcome. Calls whose arm an admin forced (replay) count for
everything but the sample-ratio check, which is about how traffic was assigned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.accounting.store import Database
from gateway.experiments import stats
from gateway.pipeline.experiments import Experiment

_SELECT = (
    "SELECT l.variant, l.status, l.latency_ms, l.cost_pusd, o.score, l.ts, "
    "x.request_id IS NOT NULL FROM ledger l "
)
_WHERE = (
    "LEFT JOIN forced_arms x ON x.request_id = l.request_id "
    "WHERE l.experiment = ? AND l.variant IS NOT NULL AND l.ts >= ? ORDER BY l.ts, l.request_id"
)
_FEEDBACK = _SELECT + "LEFT JOIN feedback o ON o.request_id = l.request_id " + _WHERE
_GRADES = _SELECT + "LEFT JOIN grades o ON o.request_id = l.request_id AND o.grader = ? " + _WHERE
TIMELINE_BUCKETS = 24


def metric_query(metric: str) -> tuple[str, tuple[str, ...]]:
    """The SQL and leading parameters for an outcome metric; ValueError naming it if unknown."""
    if metric == "feedback":
        return _FEEDBACK, ()
    kind, sep, name = metric.partition(":")
    if kind == "grader" and sep and name:
        return _GRADES, (name,)
    raise ValueError(f"metric: {metric!r} is not feedback or grader:NAME")


def timeline(
    rated: Sequence[tuple[str, float, float]], arms: Sequence[str], buckets: int = TIMELINE_BUCKETS
) -> dict[str, Any]:
    """The outcome mean per arm in ``buckets`` equal slices of time from the first to the last
    outcome (None where an arm had none); ``rated`` is (arm, outcome, ts) rows."""
    if not rated:
        return {"start": None, "end": None, "buckets": buckets, "means": {a: [] for a in arms}}
    start = min(ts for _, _, ts in rated)
    end = max(ts for _, _, ts in rated)
    width = (end - start) / buckets or 1.0
    sums = {a: [0.0] * buckets for a in arms}
    counts = {a: [0] * buckets for a in arms}
    for arm, value, ts in rated:
        if arm not in sums:
            continue
        i = min(buckets - 1, int((ts - start) / width))
        sums[arm][i] += value
        counts[arm][i] += 1
    means = {
        a: [s / n if n else None for s, n in zip(sums[a], counts[a], strict=True)] for a in arms
    }
    return {"start": start, "end": end, "buckets": buckets, "means": means}


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
    metric: str = "feedback"  # or "grader:NAME"
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
    sql, leading = metric_query(options.metric)
    rows = db.query(sql, (*leading, experiment.name, options.since))
    nan = float("nan")
    by_arm: dict[str, list[tuple[float, float, float]]] = {name: [] for name in experiment.arms}
    rated: list[tuple[str, float]] = []  # (arm, outcome) in arrival order
    dated: list[tuple[str, float, float]] = []
    window = options.ratio_window
    # Calls the split chose (not forced by an admin), in the ratio window when there is one.
    assigned = dict.fromkeys(experiment.arms, 0)
    for variant, status, latency, cost, score, ts, forced in rows:
        if variant not in by_arm:
            continue  # an arm since removed from the config
        if not forced and (window is None or window.start <= ts < window.end):
            assigned[variant] += 1
        by_arm[variant].append(
            (
                float(status >= 400),
                nan if latency is None else float(latency),
                nan if cost is None else int(cost) / 1e12,
            )
        )
        if score is not None:
            rated.append((variant, float(score)))
            dated.append((variant, float(score), float(ts)))

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
    srm = stats.sample_ratio(assigned, experiment.weights if window is None else window.weights)
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
        "metric": options.metric,
        "verdict": {
            "kind": decision.kind,
            "text": decision.text,
            "more_samples_per_arm": decision.more_samples_per_arm,
        },
        "arms": [summaries[name].as_json() for name in experiment.arms],
        "difference": diff.as_json() if diff else None,
        "sample_ratio": srm.as_json(),
        "guardrails": [g.as_json() for g in guards],
        "forced": sum(s.n for s in summaries.values()) - sum(assigned.values()),
        "timeline": timeline(dated, list(experiment.arms)),
    }
