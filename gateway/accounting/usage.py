"""Usage from the ledger, grouped by tenant, key, model, alias, variant or day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from gateway.accounting.money import pusd_to_usd, usd_text
from gateway.accounting.store import Database
from gateway.errors import InvalidRequest

GroupBy = Literal["tenant", "key", "model", "alias", "variant", "day"]
GROUPS: tuple[GroupBy, ...] = ("tenant", "key", "model", "alias", "variant", "day")
_COLUMN: dict[str, str] = {
    "tenant": "tenant",
    "key": "key_id",
    "model": "target",
    "alias": "alias",
    "variant": "variant",
}


@dataclass(frozen=True)
class UsageRow:
    group: str | None
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: Decimal
    unpriced_requests: int  # calls whose cost is unknown or provisioned: not in cost_usd
    cache_savings_usd: Decimal
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    cache_hits: int = 0  # answered from the response cache (cost 0, savings recorded)
    p99_latency_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def as_json(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["cost_usd"] = usd_text(self.cost_usd)
        out["cache_savings_usd"] = usd_text(self.cache_savings_usd)
        out["error_rate"] = round(self.error_rate, 6)
        return out


def parse_time(value: str | None, field: str) -> float | None:
    """Epoch seconds, or an ISO 8601 date/time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"{field}: expected an ISO 8601 time (2026-12-01T00:00:00Z) or epoch seconds",
            param=field,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def check_group(value: str) -> GroupBy:
    if value not in GROUPS:
        raise InvalidRequest(f"group_by: must be one of {', '.join(GROUPS)}", param="group_by")
    return value


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = max(0, min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def usage(
    db: Database,
    group_by: GroupBy,
    *,
    since: float | None = None,
    until: float | None = None,
    tenant: str | None = None,
    key_id: str | None = None,
) -> list[UsageRow]:
    if group_by == "day":
        group = (
            "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            if db.dialect == "postgres"
            else "strftime('%Y-%m-%d', ts, 'unixepoch')"
        )
    else:
        group = _COLUMN[group_by]
    where, params = ["1 = 1"], []
    for clause, value in (
        ("ts >= ?", since),
        ("ts < ?", until),
        ("tenant = ?", tenant),
        ("key_id = ?", key_id),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    condition = " AND ".join(where)
    rows = db.query(
        f"SELECT {group} AS g, {SUMS} FROM ledger WHERE {condition} GROUP BY g ORDER BY g",
        params,
    )
    latencies = db.query(
        f"SELECT {group} AS g, latency_ms FROM ledger WHERE {condition} "
        "AND latency_ms IS NOT NULL ORDER BY g, latency_ms",
        params,
    )
    by_group: dict[Any, list[float]] = {}
    for g, latency in latencies:
        by_group.setdefault(g, []).append(float(latency))
    return [usage_row(r[0], r[1:], by_group.get(r[0], [])) for r in rows]


# The sums of one group, in the order ``usage_row`` reads them.
SUMS = (
    "COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(input_tokens), "
    "SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), "
    "COALESCE(SUM(cost_pusd), 0), SUM(CASE WHEN cost_pusd IS NULL THEN 1 ELSE 0 END), "
    "COALESCE(SUM(cache_savings_pusd), 0), SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END)"
)


def usage_row(group: str | None, sums: Sequence[Any], latencies: list[float]) -> UsageRow:
    """A row from the ``SUMS`` columns and the group's sorted latencies (may be empty)."""
    return UsageRow(
        group=group,
        requests=int(sums[0]),
        errors=int(sums[1] or 0),
        input_tokens=int(sums[2] or 0),
        output_tokens=int(sums[3] or 0),
        cache_read_tokens=int(sums[4] or 0),
        cache_write_tokens=int(sums[5] or 0),
        cost_usd=pusd_to_usd(int(sums[6])),
        unpriced_requests=int(sums[7] or 0),
        cache_savings_usd=pusd_to_usd(int(sums[8])),
        p50_latency_ms=_percentile(latencies, 0.50),
        p95_latency_ms=_percentile(latencies, 0.95),
        cache_hits=int(sums[9] or 0),
        p99_latency_ms=_percentile(latencies, 0.99),
    )


def spent_pusd(db: Database, kind: str, ident: str, since: float) -> int:
    """Recorded spend of one key or tenant since ``since`` (seeds budget counters)."""
    column = "key_id" if kind == "key" else "tenant"
    rows = db.query(
        f"SELECT COALESCE(SUM(cost_pusd), 0) FROM ledger WHERE {column} = ? AND ts >= ?",
        (ident, since),
    )
    return int(rows[0][0])
