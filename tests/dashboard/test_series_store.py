"""The time series on both databases: calls land in the bucket their time falls in, empty buckets
are present as zeros, and the tenant scope filters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.accounting.ledger import Ledger
from gateway.accounting.store import Database
from gateway.accounting.usage import usage
from gateway.dashboard.series import series
from gateway.dashboard.views import summary
from gateway.errors import InvalidRequest
from tests.accounting.conftest import pg_schema
from tests.accounting.test_ledger import record

T0 = 1_780_000_000.0 - 1_780_000_000.0 % 3600  # an hour boundary


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgres":
        with pg_schema() as url:
            database = Database(url, tmp_path / "home")
            database.migrate()
            yield database
            database.close()
    else:
        database = Database(None, tmp_path / "home")
        database.migrate()
        yield database
        database.close()


def test_calls_land_in_their_minute_and_hour(db: Database, tmp_path: Path) -> None:
    ledger = Ledger(db, tmp_path, flush_interval_s=0.05)
    ledger.start()
    # Minute 0: two calls (one an error); minute 1: none; minute 2: one call at its last second,
    # another tenant's call in minute 2; one call in the next hour.
    ledger.record(record(1, ts=T0 + 0.5))
    ledger.record(record(2, ts=T0 + 59.9, status=429, latency_ms=3.5))
    ledger.record(record(3, ts=T0 + 179.99, cache_hit=True, cache_savings_pusd=7))
    ledger.record(record(4, ts=T0 + 150, tenant="globex"))
    ledger.record(record(5, ts=T0 + 3600 + 1))
    assert ledger.flush()
    ledger.close()

    points = series(db, "minute", since=T0, until=T0 + 180)
    assert [p.ts for p in points] == [int(T0), int(T0) + 60, int(T0) + 120]
    assert [p.requests for p in points] == [2, 0, 2]
    assert [p.errors for p in points] == [1, 0, 0]
    assert points[0].output_tokens == 2 + 4 and points[0].cost_pusd == 3000
    assert points[0].mean_latency_ms == pytest.approx(2.5)
    assert points[1].mean_latency_ms is None
    assert (points[2].cache_hits, points[2].cache_savings_pusd) == (1, 7)

    acme = series(db, "minute", since=T0, until=T0 + 180, tenant="acme")
    assert [p.requests for p in acme] == [2, 0, 1]

    hours = series(db, "hour", since=T0 - 3600, until=T0 + 7200)
    assert [(p.ts, p.requests) for p in hours] == [
        (int(T0) - 3600, 0),
        (int(T0), 4),
        (int(T0) + 3600, 1),
    ]
    assert hours[1].as_json()["cost_usd"] == "0.00000001"  # 10,000 pico-USD


def test_bad_ranges_are_refused(db: Database) -> None:
    with pytest.raises(InvalidRequest, match="until"):
        series(db, "minute", since=T0, until=T0)
    with pytest.raises(InvalidRequest, match="2000 minutes"):
        series(db, "minute", since=T0, until=T0 + 60 * 2001)


def test_summary_rolls_up_like_usage_on_both_databases(db: Database, tmp_path: Path) -> None:
    ledger = Ledger(db, tmp_path, flush_interval_s=0.05)
    ledger.start()
    for i in range(1, 13):
        ledger.record(
            record(
                i,
                ts=T0 + i,
                tenant="acme" if i % 3 else "globex",
                target=f"bedrock:m{i % 2}",
                variant="a" if i % 4 == 0 else None,
                cache_hit=i == 5,
                latency_ms=float(i),
            )
        )
    assert ledger.flush()
    ledger.close()
    body = summary(db, since=T0, until=T0 + 60, tenant=None)
    for group in ("tenant", "key", "model", "alias", "variant"):
        expected = usage(db, group, since=T0, until=T0 + 60)  # type: ignore[arg-type]
        got = {r["group"]: r for r in body["by"][group]}
        for row in expected:
            mine = got.pop(row.group)
            for field in ("requests", "errors", "output_tokens", "cost_usd", "cache_hits"):
                assert mine[field] == row.as_json()[field], (group, field)
            if group == "model":
                assert mine["p95_latency_ms"] == row.p95_latency_ms
        assert got == {}, group
    assert body["totals"]["requests"] == 12 and body["totals"]["cache_hits"] == 1
    assert body["totals"]["p50_latency_ms"] == 7.0 and body["totals"]["p99_latency_ms"] == 12.0
    scoped = summary(db, since=T0, until=T0 + 60, tenant="globex")
    assert [r["group"] for r in scoped["by"]["tenant"]] == ["globex"]
    assert scoped["totals"]["requests"] == 4
