"""Feedback and the experiment report on both databases (SQLite and PostgreSQL): migration
0002, the upsert that replaces a rating, and the per-variant read behind ``ab status``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.accounting.keys import KeyPrincipal
from gateway.accounting.ledger import Ledger, LedgerRecord
from gateway.accounting.store import Database
from gateway.errors import Forbidden, NotFound
from gateway.experiments.feedback import FeedbackBody, rate
from gateway.experiments.report import ReportOptions, report
from gateway.pipeline.experiments import Arm, Experiment


def _record(rid: str, variant: str, status: int = 200, latency: float = 40.0) -> LedgerRecord:
    return LedgerRecord(
        request_id=rid, ts=time.time(), tenant="acme", key_id="k1", surface="openai",
        alias="support", experiment="support", variant=variant, target="bedrock:m",
        region=None, status=status, error_class=None, attempts=1, cache_hit=False,
        stream=False, input_tokens=3, output_tokens=5, cache_read_tokens=0,
        cache_write_tokens=0, cost_pusd=2_000_000_000, pricing="priced",
        cache_savings_pusd=None, latency_ms=latency, upstream_ms=latency, ttft_ms=None,
    )  # fmt: skip


def test_ratings_replace_and_the_report_reads_them(db: Database, tmp_path: Path) -> None:
    assert ("0002_feedback",) in db.query("SELECT name FROM schema_migrations ORDER BY name")
    ledger = Ledger(db, tmp_path / "home", flush_interval_s=0.05)
    ledger.start()
    try:
        for i in range(40):
            ledger.record(_record(f"c{i}", "control", status=500 if i == 0 else 200))
            ledger.record(_record(f"t{i}", "tuned", latency=400.0))
        acme = KeyPrincipal(tenant="acme", key_id="k1")
        for i in range(40):
            rate(db, ledger, acme, FeedbackBody(request_id=f"c{i}", label="down"))
            rate(db, ledger, acme, FeedbackBody(request_id=f"t{i}", score=0.2))
            rate(db, ledger, acme, FeedbackBody(request_id=f"t{i}", label="up"))  # replaces
        with pytest.raises(Forbidden):
            rate(db, ledger, KeyPrincipal(tenant="globex", key_id="k2"),
                 FeedbackBody(request_id="c1", label="up"))  # fmt: skip
        with pytest.raises(NotFound):
            rate(db, ledger, acme, FeedbackBody(request_id="zzz", label="up"))
    finally:
        ledger.close()
    assert db.query("SELECT count(*), sum(score) FROM feedback") == [(80, 40.0)]
    experiment = Experiment(
        "support",
        {"control": Arm("control", ()), "tuned": Arm("tuned", ())},
        {"control": 50, "tuned": 50},
    )
    out = report(
        db,
        experiment,
        ReportOptions(guardrails=["p95_latency_ms<+20%"], min_samples=20),
    )
    arms = {a["name"]: a for a in out["arms"]}
    assert arms["control"]["errors"] == 1 and arms["control"]["outcome_mean"] == 0.0
    assert arms["tuned"]["outcome_mean"] == 1.0
    assert arms["tuned"]["cost_per_request_usd"] == pytest.approx(0.002)
    # Ten times the latency: the guardrail fails, and that outranks the better outcome.
    assert out["verdict"]["kind"] == "guardrail failed"
    assert out["verdict"]["text"].startswith("guardrail failed: p95_latency_ms<+20%")
    assert report(db, experiment, ReportOptions(min_samples=20))["verdict"]["kind"] == (
        "candidate better"
    )
