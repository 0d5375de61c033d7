"""What the dashboard shows, as JSON: usage grouped five ways, totals, budget use per key and per
tenant. Synchronous (database reads); the routes run it off the event loop.

``tenant`` is the scope the route has already enforced: ``None`` only for an admin key asking
for every tenant.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from gateway.accounting.budgets import BudgetScope
from gateway.accounting.keys import KeyAdmin, Limits
from gateway.accounting.money import pusd_to_usd, usd_text, usd_to_pusd
from gateway.accounting.store import Database
from gateway.accounting.usage import UsageRow, _percentile, spent_pusd, usage

GROUPS = ("tenant", "key", "model", "alias", "variant")
_SUMMED = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "unpriced_requests",
    "cache_hits",
)


def totals(rows: list[UsageRow]) -> dict[str, Any]:
    """Sums over the groups of one grouping (every call is in exactly one group)."""
    out: dict[str, Any] = {name: sum(getattr(r, name) for r in rows) for name in _SUMMED}
    out["cost_usd"] = usd_text(sum((r.cost_usd for r in rows), Decimal(0)))
    out["cache_savings_usd"] = usd_text(sum((r.cache_savings_usd for r in rows), Decimal(0)))
    requests = out["requests"]
    out["error_rate"] = round(out["errors"] / requests, 6) if requests else 0.0
    out["cache_hit_rate"] = round(out["cache_hits"] / requests, 6) if requests else 0.0
    return out


def _where(
    since: float | None, until: float | None, tenant: str | None, *extra: str
) -> tuple[str, list[Any]]:
    where, params = list(extra), []
    for clause, value in (("ts >= ?", since), ("ts < ?", until), ("tenant = ?", tenant)):
        if value is not None:
            where.append(clause)
            params.append(value)
    return " AND ".join(where) or "1 = 1", params


def latency(
    db: Database, since: float | None, until: float | None, tenant: str | None
) -> dict[str, float | None]:
    """Percentiles over every call in the range (they cannot be summed from the groups')."""
    where, params = _where(since, until, tenant, "latency_ms IS NOT NULL")
    rows = db.query(f"SELECT latency_ms FROM ledger WHERE {where} ORDER BY latency_ms", params)
    values = [float(r[0]) for r in rows]
    return {f"p{q}_latency_ms": _percentile(values, q / 100) for q in (50, 95, 99)}


def summary(
    db: Database, *, since: float | None, until: float | None, tenant: str | None
) -> dict[str, Any]:
    by = {g: usage(db, g, since=since, until=until, tenant=tenant) for g in GROUPS}  # type: ignore[arg-type]
    return {
        "totals": {**totals(by["tenant"]), **latency(db, since, until, tenant)},
        "by": {g: [r.as_json() for r in rows] for g, rows in by.items()},
        "budgets": budgets(db, tenant),
    }


def _budget(kind: str, ident: str, limits: Limits, db: Database, now: float) -> dict[str, Any]:
    limit = limits.budget_pusd
    period = limits.budget_period
    since = BudgetScope(kind, ident, limit or 0, period).since(now)
    spent = spent_pusd(db, kind, ident, since)
    return {
        "kind": kind,
        "id": ident,
        "period": period,
        "budget_usd": None if limit is None else usd_text(pusd_to_usd(limit)),
        "spent_usd": usd_text(pusd_to_usd(spent)),
        "used": round(spent / limit, 6) if limit else None,
    }


def budgets(db: Database, tenant: str | None) -> list[dict[str, Any]]:
    """Spend in the current budget period of every live key (and every tenant with limits),
    against its budget when it has one. Spend is the ledger's: reservations of calls in flight
    are not in it."""
    now = time.time()
    admin = KeyAdmin(db)
    out = []
    for name, limits in sorted(admin.tenants().items()):
        if (tenant is None or name == tenant) and limits.budget_pusd is not None:
            out.append(_budget("tenant", name, limits, db, now))
    for key in admin.list(tenant):
        if key.revoked_at is not None:
            continue
        limit = None if key.budget_usd is None else usd_to_pusd(key.budget_usd)
        limits = Limits(budget_pusd=limit, budget_period=key.budget_period)
        row = _budget("key", key.id, limits, db, now)
        out.append({**row, "name": key.name, "tenant": key.tenant})
    return out


def served(
    db: Database, *, since: float | None, until: float | None, tenant: str | None
) -> dict[tuple[str, str], int]:
    """Calls per (alias, variant), for the experiments panel."""
    where, params = _where(since, until, tenant, "variant IS NOT NULL")
    rows = db.query(
        f"SELECT alias, variant, COUNT(*) FROM ledger WHERE {where} GROUP BY alias, variant",
        params,
    )
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}
