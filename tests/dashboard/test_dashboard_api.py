"""The dashboard's JSON routes: their numbers equal ``/admin/usage``'s, the tenant scope is
enforced on the server, the time series adds up, and the page is served with a policy that lets
it reach only this gateway."""

from __future__ import annotations

import itertools
from decimal import Decimal

import httpx
import pytest

from tests.dashboard.conftest import ADMIN, HAIKU, NOVA, Served


def get(served: Served, path: str, headers: dict[str, str], **params: str) -> httpx.Response:
    return httpx.get(f"{served.url}{path}", params=params, headers=headers)


LATENCY = ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms")


def keyed(rows: list[dict[str, object]], group: str) -> dict[object, dict[str, object]]:
    """Rows by group; latency percentiles only where the dashboard shows them (per target)."""
    return {
        r["group"]: {k: v for k, v in r.items() if group == "model" or k not in LATENCY}
        for r in rows
    }


def test_admin_summary_equals_admin_usage(served: Served) -> None:
    body = get(served, "/admin/dashboard/summary", ADMIN).json()
    assert body["scope"] == {"tenant": None, "admin": True, "key_tenant": "dev"}
    for group in ("tenant", "model", "alias", "variant", "key"):
        assert keyed(body["by"][group], group) == keyed(served.usage(group), group), group
    totals, usage = body["totals"], served.usage()
    assert totals["requests"] == sum(served.calls.values()) == 22
    assert totals["errors"] == 2
    assert totals["input_tokens"] == sum(r["input_tokens"] for r in usage)
    assert totals["output_tokens"] == sum(r["output_tokens"] for r in usage)
    assert Decimal(totals["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in usage) > 0
    assert totals["cache_hits"] == 2
    assert Decimal(totals["cache_savings_usd"]) > 0
    assert totals["p50_latency_ms"] <= totals["p95_latency_ms"] <= totals["p99_latency_ms"]
    assert {r["group"] for r in body["by"]["model"]} == {f"bedrock:{HAIKU}", f"bedrock:{NOVA}"}
    [experiment] = body["experiments"]
    shares = {v["name"]: (v["share"], v["served"]) for v in experiment["variants"]}
    served_by_variant = {r["group"]: r["requests"] for r in served.usage("variant")}
    assert shares == {
        "a": (0.6, served_by_variant.get("a", 0)),
        "b": (0.4, served_by_variant.get("b", 0)),
    }
    assert sum(v for _, v in shares.values()) == 8
    assert {b["target"] for b in body["breakers"]} == {f"bedrock:{HAIKU}", f"bedrock:{NOVA}"}
    assert {b["state"] for b in body["breakers"]} == {"closed"}
    budgets = {b["id"]: b for b in body["budgets"]}
    acme = budgets[served.key_ids["acme"]]
    acme_cost = next(r["cost_usd"] for r in usage if r["group"] == "acme")
    assert (acme["budget_usd"], acme["spent_usd"]) == ("1", acme_cost)
    assert acme["used"] == pytest.approx(float(Decimal(acme_cost)), abs=1e-6) and acme["used"] > 0
    assert budgets[served.key_ids["globex"]]["budget_usd"] is None


def test_a_tenant_key_sees_only_its_own_tenant(served: Served) -> None:
    acme = served.auth("acme")
    body = get(served, "/admin/dashboard/summary", acme).json()
    assert body["scope"] == {"tenant": "acme", "admin": False, "key_tenant": "acme"}
    assert [r["group"] for r in body["by"]["tenant"]] == ["acme"]
    assert keyed(body["by"]["model"], "model") == keyed(
        served.usage("model", tenant="acme"), "model"
    )
    assert body["totals"]["requests"] == served.calls["acme"]
    assert [b["id"] for b in body["budgets"]] == [served.key_ids["acme"]]
    assert "experiments" not in body and "breakers" not in body  # gateway-wide: admin only
    for path in ("/admin/dashboard/summary", "/admin/dashboard/series"):
        refused = get(served, path, acme, tenant="globex")
        assert refused.status_code == 403, path
        assert refused.json()["error"]["param"] == "tenant"
        assert get(served, path, {}).status_code == 401
    points = get(served, "/admin/dashboard/series", acme).json()
    assert points["tenant"] == "acme"
    assert sum(p["requests"] for p in points["data"]) == served.calls["acme"]
    # An admin key may narrow to one tenant.
    narrowed = get(served, "/admin/dashboard/summary", ADMIN, tenant="globex").json()
    assert narrowed["totals"]["requests"] == served.calls["globex"]


def test_series_adds_up_to_the_totals(served: Served) -> None:
    usage = served.usage()
    for bucket, width in (("minute", 60), ("hour", 3600)):
        body = get(served, "/admin/dashboard/series", ADMIN, bucket=bucket).json()
        data = body["data"]
        assert body["bucket"] == bucket
        assert all(b["ts"] - a["ts"] == width for a, b in itertools.pairwise(data))
        assert len(data) in ((60, 61) if bucket == "minute" else (1, 2))
        assert sum(p["requests"] for p in data) == sum(r["requests"] for r in usage)
        assert sum(p["errors"] for p in data) == 2
        assert sum(p["output_tokens"] for p in data) == sum(r["output_tokens"] for r in usage)
        assert sum(Decimal(p["cost_usd"]) for p in data) == sum(
            Decimal(r["cost_usd"]) for r in usage
        )
        assert sum(p["cache_hits"] for p in data) == 2
    bad = get(served, "/admin/dashboard/series", ADMIN, bucket="second")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "bucket")
    wide = get(served, "/admin/dashboard/series", ADMIN, since="0", bucket="minute")
    assert (wide.status_code, wide.json()["error"]["param"]) == (400, "since")


def test_the_page_and_its_files_are_served_with_a_same_origin_policy(served: Served) -> None:
    page = httpx.get(f"{served.url}/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "default-src 'none'" in policy
    assert "/dashboard/app.js" in page.text and "http" not in page.text.split("<body>")[0]
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        asset = httpx.get(f"{served.url}/dashboard/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
    assert httpx.get(f"{served.url}/dashboard/missing.js").status_code == 404
    assert httpx.get(f"{served.url}/dashboard/..%2Fseries.py").status_code == 404


def test_every_static_file_is_package_data() -> None:
    """A wheel and a fresh ``pip install`` ship the page: each file matches a package-data glob."""
    import fnmatch
    import tomllib

    from tests.dashboard.conftest import ROOT

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["*"]
    static = ROOT / "gateway" / "dashboard" / "static"
    files = [p.name for p in static.iterdir() if p.is_file()]
    assert "index.html" in files and "app.js" in files
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []
