"""Where a candidate came from and what was decided about it: dataset → job → variant →
experiment → ramp steps → promotion or rollback.

The first part is the variant registry's lineage (``variants show``); the gateway adds the
experiment and its latest decision there (``link``) and ``ab status`` shows the whole chain
(``chain``) from the registry and the experiment's decision record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.experiments.store import ExperimentRecord

# The registry's stages in the order they happen (the SageMaker hand-off records these).
_ORDER = (
    "dataset", "training_job", "tuning_job", "model_package", "import_job", "imported_model",
)  # fmt: skip
_OURS = ("experiment", "promotion")  # keys the gateway writes; not upstream stages
DECISIONS = frozenset({"ramp", "step", "promote", "rollback"})


class Registry(Protocol):
    def describe(self, name: str) -> dict[str, Any] | None: ...
    def link(self, name: str, entries: dict[str, str]) -> bool: ...


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def variant_arms(record: ExperimentRecord) -> dict[str, str]:
    """arm → the variant name its chain starts with (arms without one are left out)."""
    out = {}
    for arm, chain in record.arms.items():
        if chain and chain[0].startswith("variant:"):
            out[arm] = chain[0].removeprefix("variant:")
    return out


def entries(record: ExperimentRecord, arm: str, detail: Mapping[str, Any]) -> dict[str, str]:
    """What the registry records for the variant on ``arm`` after a decision."""
    kind = str(detail.get("kind"))
    out = {"experiment": f"{record.name} (arm {arm} of alias {record.alias})"}
    when, actor = _when(record.updated_at), detail.get("actor")
    if kind == "promote":
        won = record.winner == arm
        verb = "promoted" if won else f"not promoted ({record.winner} won)"
        out["promotion"] = f"{verb} {when} by {actor}, version {record.version}"
    elif kind == "rollback":
        out["promotion"] = f"rolled back {when} by {actor}: {detail.get('reason')}"
    elif kind in ("ramp", "step"):
        share = record.effective_weights().get(arm, 0.0)
        out["promotion"] = f"ramping: {share:g}% since {when} ({actor})"
    return out


def linker(registry: Registry) -> Any:
    def link(record: ExperimentRecord, detail: Mapping[str, Any]) -> None:
        if detail.get("kind") not in DECISIONS | {"create"}:
            return
        for arm, name in variant_arms(record).items():
            registry.link(name, entries(record, arm, detail))

    return link


def chain(
    record: ExperimentRecord, events: list[dict[str, Any]], registry: Registry | None
) -> list[dict[str, Any]]:
    """The candidate's lineage then the experiment's decisions, oldest first."""
    steps: list[dict[str, Any]] = []
    name = variant_arms(record).get(record.candidate)
    variant = registry.describe(name) if registry is not None and name else None
    if variant is not None:
        recorded = {k: v for k, v in variant.get("lineage", {}).items() if k not in _OURS}
        for stage in sorted(recorded, key=lambda k: (_ORDER.index(k) if k in _ORDER else 99, k)):
            steps.append({"stage": stage, "ref": recorded[stage]})
        if variant.get("job_arn") and "training_job" not in recorded:
            steps.append({"stage": "job", "ref": variant["job_arn"]})
        steps.append({"stage": "variant", "ref": name, "target": variant.get("target")})
    steps.append(
        {
            "stage": "experiment",
            "ref": record.name,
            "when": _when(record.created_at),
            "actor": record.created_by,
        }
    )
    for event in events:
        if event["kind"] in DECISIONS:
            steps.append(
                {
                    "stage": event["kind"],
                    "ref": f"event {event['id']}",
                    "when": _when(event["ts"]),
                    "actor": event["actor"],
                    "reason": event["reason"],
                    "weights": event["weights"],
                }
            )
    return steps
