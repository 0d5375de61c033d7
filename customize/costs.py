"""Cost estimates printed before Strata starts paid work, from the price table in catalog/.

The figures are estimates: tokens are counted with the dataset scan's heuristic, and prices come
from ``catalog/prices.json`` with its source and date (and whether they were confirmed there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from customize.catalog import Family, prices


@dataclass(frozen=True)
class Estimate:
    lines: tuple[str, ...]
    training_usd: float | None
    storage_usd_per_month: float | None
    source: str
    confirmed: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _caveat() -> str:
    table = prices()
    state = "confirmed" if table.confirmed else "NOT confirmed"
    return f"prices from {table.source} as of {table.checked}, {state}: check that page"


def training_estimate(
    family: Family, *, tokens: int | None, epochs: int, teacher: bool = False
) -> Estimate:
    table = prices()
    rate = table.training_per_1k_tokens.get(family.name)
    storage = table.storage_per_month.get(family.name)
    lines: list[str] = []
    training: float | None = None
    if teacher or tokens is None:
        lines.append(
            "training: not estimated (the tokens trained on are the teacher's answers, known "
            "only when the job runs)"
            if teacher
            else "training: not estimated (no token count)"
        )
    elif rate is None:
        lines.append(f"training: no price known for {family.display}")
    else:
        training = tokens * epochs / 1000 * rate
        lines.append(
            f"training: about {tokens:,} tokens x {epochs} epoch(s) x ${rate:g} per 1k tokens "
            f"= about ${training:,.2f}"
        )
    if storage is not None:
        lines.append(f"storage of the custom model: ${storage:g} per month until you delete it")
    hourly = table.provisioned_per_unit_hour.get(family.name)
    if family.on_demand_deployment:
        lines.append("serving: on-demand deployment, billed per token at inference")
    if hourly:
        lines.append(
            f"serving: Provisioned Throughput ${hourly['none']:g} per model unit per hour "
            "without commitment (strata customize provision --units N)"
        )
    lines.append(_caveat())
    return Estimate(tuple(lines), training, storage, table.source, table.confirmed)


def provisioned_estimate(family: Family | None, units: int, commitment: str | None) -> Estimate:
    table = prices()
    hourly = table.provisioned_per_unit_hour.get(family.name) if family else None
    key = commitment or "none"
    lines: list[str] = []
    if hourly is None or key not in hourly:
        lines.append(
            "Provisioned Throughput: no price known for this model; it is billed per model unit "
            "per hour from creation until you delete it"
        )
        total = None
    else:
        per_hour = hourly[key] * units
        lines.append(
            f"Provisioned Throughput: {units} unit(s) x ${hourly[key]:g} per hour = "
            f"${per_hour:,.2f} per hour, billed until you delete it"
        )
        total = per_hour
        if commitment:
            hours = table.commitment_hours[commitment]
            total = per_hour * hours
            lines.append(
                f"commitment {commitment}: {hours} hours, at least ${total:,.2f}, and it cannot "
                "be deleted before the term ends"
            )
    lines.append(_caveat())
    return Estimate(tuple(lines), total, None, table.source, table.confirmed)


def import_estimate(cmus: int | None = None) -> Estimate:
    table = prices()
    rate = table.import_cmu_per_5_minutes
    units = f"{cmus} CMU(s)" if cmus else "each Custom Model Unit (CMU)"
    lines = (
        f"imported model: ${rate:g} per 5-minute window for {units} while a copy is active "
        "(copies scale to zero when idle); storage billed monthly",
        _caveat(),
    )
    return Estimate(lines, None, None, table.source, table.confirmed)
