"""The access log (one JSON line per call, no key, no prompt text) and CloudWatch EMF lines
(valid EMF documents whose sums per alias and variant match the calls made)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.observability.emf import METRICS
from tests.fakes.bedrock_wire import FakeRequest, Reply
from tests.gateway.harness import TEST_KEY
from tests.observability.conftest import gateway

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
UNITS = {"Count", "Milliseconds", "None", "Seconds", "Bytes", "Percent"}


def scripted(request: FakeRequest) -> Reply:
    if "fail" in request.last_user_text:
        return Reply(error="ValidationException")
    return Reply(text="a zebra answer", input_tokens=7, output_tokens=3)


def post(url: str, model: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        headers=AUTH,
        json={"model": model, "messages": [{"role": "user", "content": text}]},
    )


def test_access_log_has_one_line_per_call_and_no_secrets(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "access.jsonl"
    extra = f"access_log:\n  path: {log}\n"
    with gateway(tmp_path, extra, handler=scripted) as (url, _):
        ids = [post(url, "chat", "zebra question").headers["x-strata-request-id"]]
        ids.append(post(url, "exp", "zebra again").headers["x-strata-request-id"])
        failed = post(url, "chat", "zebra fail")
        assert failed.status_code == 400
        ids.append(failed.headers["x-strata-request-id"])
    raw = log.read_text()
    assert "zebra" not in raw and TEST_KEY not in raw and "sk-strata" not in raw
    lines = [orjson.loads(x) for x in raw.splitlines()]
    assert [x["request_id"] for x in lines] == ids
    ok, arm, bad = lines
    assert ok["tenant"] == "dev" and ok["alias"] == "chat" and ok["status"] == 200
    assert ok["target"].endswith("claude-3-5-haiku-20241022-v1:0")
    assert (ok["input_tokens"], ok["output_tokens"], ok["attempts"]) == (7, 3, 1)
    assert ok["cost_usd"] > 0 and ok["cache"] == "bypass" and ok["finish_reason"] == "end_turn"
    assert ok["latency_ms"] >= ok["upstream_ms"] > 0 and ok["variant"] is None
    assert arm["variant"] in ("a", "b")
    assert bad["status"] == 400 and bad["error_class"] == "rejected" and bad["input_tokens"] == 0


def check_emf(doc: dict[str, Any]) -> None:
    """The EMF specification's rules for one document (CloudWatch's "Embedded metric format
    specification": root ``_aws`` with a millisecond ``Timestamp`` and ``CloudWatchMetrics``
    directives; every dimension a root string; every metric a root number or up to 100)."""
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for d in directives:
        assert isinstance(d["Namespace"], str) and 0 < len(d["Namespace"]) <= 255
        for dims in d["Dimensions"]:
            assert isinstance(dims, list) and 0 < len(dims) <= 30
            for name in dims:
                assert isinstance(doc[name], str) and doc[name]
        assert 0 < len(d["Metrics"]) <= 100
        for m in d["Metrics"]:
            assert set(m) <= {"Name", "Unit", "StorageResolution"}
            assert m.get("Unit", "None") in UNITS
            value = doc[m["Name"]]
            assert isinstance(value, int | float) and not isinstance(value, bool)


def test_emf_lines_are_valid_and_sum_to_the_calls(tmp_path: Path) -> None:
    out = tmp_path / "emf.jsonl"
    extra = f"cloudwatch:\n  mode: emf\n  namespace: StrataTest\n  period_s: 0.3\n  path: {out}\n"
    with gateway(tmp_path, extra, handler=scripted) as (url, _):
        for i in range(9):
            post(url, "exp" if i % 3 == 0 else "chat", f"q {i}")
        post(url, "chat", "fail")
    docs = [orjson.loads(x) for x in out.read_text().splitlines()]
    assert docs
    for doc in docs:
        check_emf(doc)
        assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "StrataTest"
        assert {m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {
            n for n, _ in METRICS
        }

    def summed(field: str, **where: str) -> float:
        return sum(d[field] for d in docs if all(d[k] == v for k, v in where.items()))

    assert summed("Requests") == 10
    assert summed("Requests", Alias="chat") == 7 and summed("Errors", Alias="chat") == 1
    assert summed("Requests", Alias="exp") == 3
    assert (
        summed("Requests", Alias="exp", Variant="a") + summed("Requests", Alias="exp", Variant="b")
        == 3
    )
    assert summed("InputTokens") == 9 * 7 and summed("OutputTokens") == 9 * 3
