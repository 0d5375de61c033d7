"""Feedback and the experiment report through the real HTTP surface: a gateway with
accounting (SQLite ledger), a 50/50 experiment over the Bedrock-wire fake, tenant keys."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gateway.accounting.keys import KeyAdmin
from gateway.accounting.store import Database
from gateway.app import create_app
from gateway.cli import _mount, app
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY, serve


def reply(request: FakeRequest) -> Reply:
    return Reply(text=f"answer from {request.model_id}", input_tokens=3, output_tokens=5)


@dataclass
class Gateway:
    url: str
    home: Path
    keys: KeyAdmin

    def chat(self, key: str) -> httpx.Response:
        r = httpx.post(
            self.url + "/v1/chat/completions",
            json={"model": "support", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r

    def rate(self, key: str, body: dict[str, object]) -> httpx.Response:
        return httpx.post(
            self.url + "/v1/feedback",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    def stats(self, key: str, **params: object) -> httpx.Response:
        return httpx.get(
            self.url + "/admin/experiments/support/stats",
            params=params,  # type: ignore[arg-type]
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    def key(self, tenant: str) -> str:
        secret, _ = self.keys.create(tenant)
        for _ in range(200):  # live once the gateway's key poller saw it
            r = httpx.get(self.url + "/v1/models", headers={"Authorization": f"Bearer {secret}"})
            if r.status_code == 200:
                return secret
            time.sleep(0.05)
        raise AssertionError("key never became live")


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    home = tmp_path / "home"
    db = Database(None, home)
    db.migrate()
    with BedrockWireServer(reply) as wire:
        config = tmp_path / "strata.yaml"
        config.write_text(
            f"""
aliases:
  support:
    experiment:
      sticky_by: request
      variants:
        control: {{target: "bedrock:model-a", weight: 50}}
        tuned: {{target: "bedrock:model-b", weight: 50}}
bedrock:
  region: us-east-1
  endpoint_url: {wire.endpoint_url}
""",
            encoding="utf-8",
        )
        settings = Settings(  # type: ignore[call-arg]
            home=home, config=config, dev_key=TEST_KEY, keys_refresh_s=0.05
        )
        with serve(create_app(settings)) as url:
            yield Gateway(url, home, KeyAdmin(db))
    db.close()


def _stored(home: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "accounting.sqlite") as conn:
        return conn.execute(
            "SELECT request_id, tenant, score, label, comment FROM feedback"
        ).fetchall()


def test_feedback_is_own_tenant_only_and_a_second_rating_replaces_the_first(
    gateway: Gateway,
) -> None:
    acme, globex = gateway.key("acme"), gateway.key("globex")
    rid = gateway.chat(acme).headers["x-strata-request-id"]
    # Rated at once: the ledger's writer may not have committed the record yet.
    first = gateway.rate(acme, {"request_id": rid, "label": "up", "comment": "good"})
    assert first.status_code == 200, first.text
    assert first.json()["score"] == 1.0
    other = gateway.rate(globex, {"request_id": rid, "label": "down"})
    assert other.status_code == 403 and other.json()["error"]["param"] == "request_id"
    missing = gateway.rate(acme, {"request_id": "req-nope", "score": 0.5})
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "request_id"
    again = gateway.rate(acme, {"request_id": rid, "score": 0.25})
    assert again.status_code == 200
    assert _stored(gateway.home) == [(rid, "acme", 0.25, None, None)]
    assert httpx.post(gateway.url + "/v1/feedback", json={"request_id": rid}).status_code == 401


BAD_BODIES: list[tuple[dict[str, object], str | None]] = [
    ({"score": 1.5}, "score"),
    ({"label": "meh"}, "label"),
    ({"score": 0.5, "label": "up"}, None),
    ({}, None),
    ({"score": 0.5, "extra": 1}, "extra"),
]


def test_bad_feedback_names_the_field(gateway: Gateway) -> None:
    for body, field in BAD_BODIES:
        r = gateway.rate(TEST_KEY, {"request_id": "req-x", **body})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        if field is not None:
            assert error["param"] == field and error["message"].startswith(field)
        else:
            assert "exactly one of score" in error["message"]


def test_status_reads_the_ledger_and_ratings_and_decides(gateway: Gateway) -> None:
    acme = gateway.key("acme")
    served = {"control": 0, "tuned": 0}
    for _ in range(80):
        r = gateway.chat(acme)
        arm = r.headers["x-strata-variant"]
        # The tuned arm's answers please 9 users in 10; the control's 1 in 4. Counted per arm,
        # not per request: which requests land on which arm is random.
        k = served[arm]
        served[arm] += 1
        good = (k % 10 != 0) if arm == "tuned" else (k % 4 == 0)
        label = "up" if good else "down"
        rated = gateway.rate(acme, {"request_id": r.headers["x-strata-request-id"], "label": label})
        assert rated.status_code == 200, rated.text
    assert min(served.values()) > 20  # a fair split of 80
    assert gateway.stats(acme).status_code == 403  # admin keys only
    r = gateway.stats(TEST_KEY, min_samples=20, guardrail="error_rate<+1pt")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["control"], body["candidate"]) == ("control", "tuned")
    arms = {a["name"]: a for a in body["arms"]}
    assert {n: a["n"] for n, a in arms.items()} == served
    assert {n: a["outcomes"] for n, a in arms.items()} == served
    assert arms["tuned"]["outcome_mean"] > 0.8 > 0.4 > arms["control"]["outcome_mean"]
    assert arms["control"]["error_rate"] == 0.0 and arms["tuned"]["p95_latency_ms"] > 0
    assert body["sample_ratio"]["mismatch"] is False
    assert body["guardrails"][0]["guardrail"] == "error_rate<+1pt"
    assert body["guardrails"][0]["failed"] is False
    assert body["verdict"]["kind"] == "candidate better", body["verdict"]
    assert body["difference"]["ci"][0] > 0
    # Before enough samples, the same data says how many more it needs.
    wait = gateway.stats(TEST_KEY, min_samples=500).json()["verdict"]
    assert wait["kind"] == "no difference yet" and wait["more_samples_per_arm"] >= 500 - 40
    bad = gateway.stats(TEST_KEY, guardrail="speed<+5%")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "guardrail"
    bad = gateway.stats(TEST_KEY, control="nope")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "control"

    # The same through the CLI: the JSON document, then the printed report.
    _mount()
    base = ["ab", "status", "support", "--url", gateway.url, "--key", TEST_KEY]
    runner = CliRunner()
    out = runner.invoke(app, [*base, "--json", "--min-samples", "20"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["verdict"] == body["verdict"]
    out = runner.invoke(app, [*base, "--min-samples", "20", "--guardrail", "error_rate<+1pt"])
    assert out.exit_code == 0, out.output
    print(out.output)
    assert out.output.startswith("support: candidate better (")
    assert "guardrail error_rate<+1pt: ok" in out.output and "sample ratio:" in out.output
    denied = runner.invoke(app, ["ab", "status", "support", "--url", gateway.url, "--key", acme])
    assert denied.exit_code == 2 and "403" in denied.output

    # No winner yet at min_samples 500: refused (409), weights unchanged.
    out = runner.invoke(app, ["ab", "promote", "support", "--url", gateway.url, "--key",
                              TEST_KEY, "--min-samples", "500"])  # fmt: skip
    assert out.exit_code == 2 and "409" in out.output and "no winner to promote" in out.output
    assert {"control", "tuned"} == {gateway.chat(acme).headers["x-strata-variant"]
                                    for _ in range(20)}  # fmt: skip
    # Promote the winner named by the verdict: every later call reaches it.
    out = runner.invoke(app, ["ab", "promote", "support", "--url", gateway.url, "--key",
                              TEST_KEY, "--min-samples", "20"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert out.output.startswith("support: promoted tuned")
    assert {gateway.chat(acme).headers["x-strata-variant"] for _ in range(10)} == {"tuned"}
    # Decided: a second promotion is refused.
    out = runner.invoke(app, ["ab", "promote", "support", "--url", gateway.url, "--key",
                              TEST_KEY, "--to", "control"])  # fmt: skip
    assert out.exit_code == 2 and "is promoted" in out.output
