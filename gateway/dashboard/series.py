"""Usage over time from the ledger: one row per minute or hour bucket, empty buckets included,
so a chart's x axis is continuous."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from gateway.accounting.money import pusd_to_usd, usd_text
from gateway.accounting.store import Database
from gateway.errors import InvalidRequest

Bucket = Literal["minute", "hour"]
BUCKET_S: dict[str, int] = {"minute": 60, "hour": 3600}
MAX_BUCKETS = 2000  # a week by the hour, a day and a bit by the minute


@dataclass(frozen=True)
class Point:
    ts: int  # start of the bucket, epoch seconds (UTC)
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_pusd: int = 0
    cache_hits: int = 0
    cache_savings_pusd: int = 0
    mean_latency_ms: float | None = None

    def as_json(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["cost_usd"] = usd_text(pusd_to_usd(out.pop("cost_pusd")))
        out["cache_savings_usd"] = usd_text(pusd_to_usd(out.pop("cache_savings_pusd")))
        return out


def check_bucket(value: str) -> Bucket:
    if value not in BUCKET_S:
        raise InvalidRequest("bucket: must be minute or hour", param="bucket")
    return value  # type: ignore[return-value]


def series(
    db: Database,
    bucket: Bucket,
    *,
    since: float,
    until: float,
    tenant: str | None = None,
) -> list[Point]:
    if until <= since:
        raise InvalidRequest("until: must be after since", param="until")
    width = BUCKET_S[bucket]
    first = int(since // width) * width
    count = math.ceil((until - first) / width)  # the bucket holding until's last instant
    last = first + (count - 1) * width
    if count > MAX_BUCKETS:
        raise InvalidRequest(
            f"since: the range spans more than {MAX_BUCKETS} {bucket}s; use a wider bucket "
            "or a shorter range",
            param="since",
        )
    # width is one of two constants, never caller text. CAST truncates (ts is positive).
    start = (
        f"FLOOR(ts / {width}) * {width}"
        if db.dialect == "postgres"
        else f"CAST(ts / {width} AS INTEGER) * {width}"
    )
    where = "ts >= ? AND ts < ?"
    params: list[object] = [since, until]
    if tenant is not None:
        where += " AND tenant = ?"
        params.append(tenant)
    rows = db.query(
        f"SELECT {start} AS b, COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), "
        "SUM(input_tokens), SUM(output_tokens), COALESCE(SUM(cost_pusd), 0), "
        "SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), COALESCE(SUM(cache_savings_pusd), 0), "
        f"AVG(latency_ms) FROM ledger WHERE {where} GROUP BY b ORDER BY b",
        params,
    )
    found = {
        int(r[0]): Point(
            ts=int(r[0]),
            requests=int(r[1]),
            errors=int(r[2] or 0),
            input_tokens=int(r[3] or 0),
            output_tokens=int(r[4] or 0),
            cost_pusd=int(r[5]),
            cache_hits=int(r[6] or 0),
            cache_savings_pusd=int(r[7]),
            mean_latency_ms=None if r[8] is None else round(float(r[8]), 3),
        )
        for r in rows
    }
    return [found.get(ts, Point(ts)) for ts in range(first, last + 1, width)]
