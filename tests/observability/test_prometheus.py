"""Acceptance 4: ``/metrics`` parses with prometheus_client's own text parser, its counters
equal the ledger's totals after a mixed run, and it is refused without an admin key unless
``metrics.public: true``."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.accounting.store import Database
from tests.fakes.bedrock_wire import FakeRequest, Reply
from tests.gateway.harness import TEST_KEY
from tests.observability.conftest import gateway

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def scripted(request: FakeRequest) -> Reply:
    """Usage grows with the question number; "fail" is refused for good (not retried)."""
    text = request.last_user_text
    if "fail" in text:
        return Reply(error="ValidationException")
    n = int(text.split()[-1])
    return Reply(
        chunks=["alpha ", "beta"],
        input_tokens=10 + n,
        output_tokens=3 + n,
        cache_read_tokens=100 + n if n % 2 else None,
    )


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def total(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(
        v for lab, v in found.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
    )


def test_metrics_counters_equal_the_ledger(tmp_path: Path) -> None:
    with gateway(tmp_path, handler=scripted) as (url, _wire):
        oa = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
        for i in range(12):
            model = "exp" if i % 3 == 0 else "chat"
            messages = [{"role": "user", "content": f"question {i}"}]
            if i % 2:
                for _ in oa.chat.completions.create(model=model, messages=messages, stream=True):  # type: ignore[arg-type]
                    pass
            else:
                oa.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        for _ in range(2):
            with pytest.raises(openai.BadRequestError):
                oa.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "fail"}]
                )
        response = httpx.get(f"{url}/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    db = Database(None, tmp_path / "home")
    count, inputs, outputs, cache_read, cost, errors = db.query(
        "SELECT COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),"
        " SUM(cost_pusd), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) FROM ledger"
    )[0]
    assert count == 14 and errors == 2
    assert total(found, "strata_requests_total") == count
    assert total(found, "strata_tokens_total", kind="input") == inputs
    assert total(found, "strata_tokens_total", kind="output") == outputs
    assert total(found, "strata_tokens_total", kind="cache_read") == cache_read > 0
    assert Decimal(str(total(found, "strata_cost_usd_total"))).quantize(Decimal("1e-9")) == (
        Decimal(int(cost)) / Decimal(10**12)
    ).quantize(Decimal("1e-9"))
    assert total(found, "strata_errors_total", **{"class": "rejected"}) == 2
    assert total(found, "strata_responses_total", status="400") == 2
    # Per alias and variant: the experiment's arms are labelled.
    per_variant = {
        lab["variant"]: v for lab, v in found["strata_requests_total"] if lab["alias"] == "exp"
    }
    assert sum(per_variant.values()) == 4 and set(per_variant) <= {"a", "b"}
    ledger_variants = dict(
        db.query("SELECT variant, COUNT(*) FROM ledger WHERE alias = 'exp' GROUP BY variant")
    )
    assert per_variant == ledger_variants
    # Histograms: one observation per call; TTFT only for the streams.
    assert total(found, "strata_request_duration_seconds_count") == count
    assert total(found, "strata_time_to_first_token_seconds_count") == 6
    inf = [v for lab, v in found["strata_request_duration_seconds_bucket"] if lab["le"] == "+Inf"]
    assert sum(inf) == count
    assert "tenant" not in found["strata_requests_total"][0][0]  # off by default
    breakers = found["strata_breaker_state"]
    assert breakers and all(v == 0 for _, v in breakers)  # closed
    db.close()


def test_metrics_needs_an_admin_key_unless_public(tmp_path: Path) -> None:
    with gateway(tmp_path / "private") as (url, _):
        assert httpx.get(f"{url}/metrics").status_code == 401
        created = httpx.post(f"{url}/admin/keys", headers=AUTH, json={"tenant": "acme"})
        tenant_key = created.json()["key"]
        tenant = {"Authorization": f"Bearer {tenant_key}"}
        deadline = time.monotonic() + 30  # replicas re-read the key table every second
        refused = httpx.get(f"{url}/metrics", headers=tenant)
        while refused.status_code == 401 and time.monotonic() < deadline:
            time.sleep(0.2)
            refused = httpx.get(f"{url}/metrics", headers=tenant)
        assert refused.status_code == 403
        assert httpx.get(f"{url}/metrics", headers=AUTH).status_code == 200
    with gateway(tmp_path / "public", "metrics:\n  public: true\n  tenant_label: true\n") as (
        url,
        _,
    ):
        httpx.post(
            f"{url}/v1/chat/completions",
            headers=AUTH,
            json={"model": "chat", "messages": [{"role": "user", "content": "hi 1"}]},
        )
        open_read = httpx.get(f"{url}/metrics")
        assert open_read.status_code == 200
        found = samples(open_read.text)
        assert total(found, "strata_requests_total", tenant="dev", alias="chat") == 1
