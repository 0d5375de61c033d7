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
from gateway.accounting.usage import SUMS, UsageRow, _percentile, spent_pusd, usage_row

GROUPS = ("tenant", "key", "model", "alias", "variant")
_COLUMNS = ("tenant", "key_id", "target", "alias", "variant")  # in GROUPS order
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


def _percentiles(values: list[float]) -> dict[str, float | None]:
    return {f"p{q}_latency_ms": _percentile(values, q / 100) for q in (50, 95, 99)}


def summary(
    db: Database, *, since: float | None, until: float | None, tenant: str | None
) -> dict[str, Any]:
    """Two scans of the range, whatever the number of groupings: the sums per (tenant, key,
    target, alias, variant), rolled up here into each grouping, and every latency with its
    target (percentiles per target and overall; the other groupings carry none)."""
    where, params = _where(since, until, tenant)
    rows = db.query(
        f"SELECT {', '.join(_COLUMNS)}, {SUMS} FROM ledger WHERE {where} "
        f"GROUP BY {', '.join(_COLUMNS)}",
        params,
    )
    where, params = _where(since, until, tenant, "latency_ms IS NOT NULL")
    latencies: dict[Any, list[float]] = {}
    for target, value in db.query(f"SELECT target, latency_ms FROM ledger WHERE {where}", params):
        latencies.setdefault(target, []).append(float(value))
    for values in latencies.values():
        values.sort()
    by: dict[str, list[UsageRow]] = {}
    width = len(_COLUMNS)
    for i, group in enumerate(GROUPS):
        sums: dict[Any, list[Any]] = {}
        for r in rows:
            acc = sums.setdefault(r[i], [0] * (len(r) - width))
            for j, value in enumerate(r[width:]):
                acc[j] += value or 0
        # Ordered as /admin/usage orders them: by group, no group first.
        keys = sorted(sums, key=lambda g: (g is not None, g or ""))
        lat = latencies if group == "model" else {}
        by[group] = [usage_row(g, sums[g], lat.get(g, [])) for g in keys]
    every = sorted(v for values in latencies.values() for v in values)
    return {
        "totals": {**totals(by["tenant"]), **_percentiles(every)},
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
