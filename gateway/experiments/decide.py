"""Decisions on an experiment, each made on evidence: promotion (at once or by a ramp),
rollback, and the ramp's own step-or-roll-back rule. Pure apart from the report's database read;
the service applies what these return as one compare-and-set on the experiment's version.

The ramp rule, checked on every tick while a step is in force:

- the step's guardrails are tested on that step's records only (both arms, since the step
  began), with the stats module's always-valid one-sided test, so looking every tick does not
  inflate false alarms; a failure rolls the experiment back at once;
- once ``step_every`` has passed and each arm has at least ``RAMP_MIN_REQUESTS`` records in
  the step, the next step starts; the step to 100% is the promotion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gateway.accounting.store import Database
from gateway.errors import Conflict
from gateway.experiments import store
from gateway.experiments.live import build
from gateway.experiments.report import RatioWindow, ReportOptions, report, running_window
from gateway.experiments.store import ExperimentRecord

RAMP_MIN_REQUESTS = 10  # per arm and step: a step with less traffic waits
RAMP_ACTOR = "gateway:ramp"


@dataclass(frozen=True)
class Decision:
    kind: str  # promote, ramp, step, rollback
    changes: dict[str, Any]
    reason: str
    evidence: dict[str, Any]


def evidence(
    db: Database,
    record: ExperimentRecord,
    since: float = 0.0,
    window: RatioWindow | None = None,
) -> dict[str, Any]:
    """The experiment's report (as ``ab status`` shows it) over records since ``since``; the
    sample-ratio check over ``window`` (default: the latest stretch of constant weights)."""
    if window is None:
        window = running_window(store.events(db, record.name))
    options = ReportOptions(
        control=record.control,
        candidate=record.candidate,
        guardrails=record.guardrails,
        alpha=record.alpha,
        min_samples=record.min_samples,
        since=since,
        metric=record.metric,
        ratio_window=window,
    )
    return report(db, build(record), options)


def promoted(record: ExperimentRecord, to: str) -> dict[str, Any]:
    return {
        "status": "promoted",
        "winner": to,
        "weights": {arm: (100.0 if arm == to else 0.0) for arm in record.arms},
        "ramp": None,
        "ramp_step": None,
    }


def rolled_back(record: ExperimentRecord) -> dict[str, Any]:
    return {
        "status": "rolled_back",
        "winner": None,
        "weights": {arm: (100.0 if arm == record.control else 0.0) for arm in record.arms},
        "ramp": None,
        "ramp_step": None,
    }


def ramp_weights(record: ExperimentRecord, share: float) -> dict[str, float]:
    return {
        arm: share if arm == record.candidate else (100.0 - share if arm == record.control else 0.0)
        for arm in record.arms
    }


def promote(record: ExperimentRecord, doc: dict[str, Any], to: str | None) -> Decision:
    """All traffic to ``to``, or to the verdict's winner; Conflict when there is none."""
    if record.status not in ("running", "paused"):
        raise Conflict(
            f"experiment {record.name!r} is {record.status}; only a running or paused one "
            "can be promoted",
            param="status",
        )
    verdict = doc["verdict"]
    if to is None:
        if verdict["kind"] not in ("candidate better", "candidate worse"):
            raise Conflict(
                f"no winner to promote ({verdict['text']}); pass --to ARM to choose one anyway",
                param="to",
            )
        to = record.candidate if verdict["kind"] == "candidate better" else record.control
        reason = f"verdict: {verdict['text']}"
    else:
        reason = f"promoted by hand to {to} (verdict then: {verdict['text']})"
    if to not in record.arms:
        raise Conflict(f"to: {to!r} is not an arm; arms are {', '.join(record.arms)}", param="to")
    return Decision("promote", promoted(record, to), reason, doc)


def start_ramp(
    record: ExperimentRecord, doc: dict[str, Any], steps: list[float], every_s: float
) -> Decision:
    if record.status not in ("running", "paused"):
        raise Conflict(
            f"experiment {record.name!r} is {record.status}; only a running or paused one "
            "can be ramped",
            param="status",
        )
    if not record.guardrails:
        raise Conflict(
            f"experiment {record.name!r} has no guardrails, so a ramp would check nothing; "
            "create it with --guardrail, or promote it at once",
            param="guardrails",
        )
    if steps[0] >= 100:
        return Decision("promote", promoted(record, record.candidate), "ramp of one step", doc)
    changes = {
        "status": "running",
        "ramp": steps,
        "ramp_step": 0,
        "step_every_s": every_s,
        "step_started": time.time(),
        "weights": ramp_weights(record, steps[0]),
    }
    plan = ",".join(f"{s:g}" for s in steps)
    return Decision("ramp", changes, f"ramp {plan}% every {every_s:g} s", doc)


def rollback(record: ExperimentRecord, doc: dict[str, Any], reason: str) -> Decision:
    if record.status in ("stopped", "rolled_back"):
        raise Conflict(
            f"experiment {record.name!r} is {record.status}; nothing to roll back",
            param="status",
        )
    return Decision("rollback", rolled_back(record), reason, doc)


def ramp_tick(db: Database, record: ExperimentRecord, now: float) -> Decision | None:
    """What the ramp does now: roll back, take the next step, or nothing (None)."""
    if not record.ramping or record.ramp is None or record.ramp_step is None:
        return None
    step, steps = record.ramp_step, record.ramp
    started = record.step_started or record.updated_at
    window = RatioWindow(started, float("inf"), record.weights)
    doc = evidence(db, record, since=started, window=window)
    doc["window"] = {"since": started, "step": step + 1, "share": steps[step]}
    failed = [g for g in doc["guardrails"] if g["failed"]]
    if failed:
        why = "; ".join(f"{g['guardrail']} ({g['detail']})" for g in failed)
        reason = f"guardrail failed at step {step + 1} ({steps[step]:g}%): {why}"
        return Decision("rollback", rolled_back(record), reason, doc)
    if now - started < (record.step_every_s or 0.0):
        return None
    counts = {a["name"]: a["n"] for a in doc["arms"]}
    if min(counts.get(record.control, 0), counts.get(record.candidate, 0)) < RAMP_MIN_REQUESTS:
        return None  # not enough traffic in this step to have checked anything
    share = steps[step + 1]
    if share >= 100:
        reason = f"ramp complete: guardrails held through {step + 1} steps"
        return Decision("promote", promoted(record, record.candidate), reason, doc)
    changes = {"ramp_step": step + 1, "step_started": now, "weights": ramp_weights(record, share)}
    reason = f"step {step + 2} of {len(steps)}: candidate at {share:g}% (guardrails held)"
    return Decision("step", changes, reason, doc)
