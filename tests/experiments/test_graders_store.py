"""Grades and forced-arm notes on both dialects (migration 0004): a second grade replaces the
first, a forced note is kept once, and the report reads a grader's scores and leaves forced
calls out of the sample-ratio check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.accounting.ledger import COLUMNS, LedgerRecord, as_row
from gateway.accounting.store import Database
from gateway.experiments.graders import store
from gateway.experiments.report import ReportOptions, report
from gateway.pipeline.experiments import Arm, Experiment
from gateway.targets import parse_target
from tests.accounting.conftest import pg_schema


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(None, tmp_path / "home")
        database.migrate()
        yield database
        database.close()
        return
    with pg_schema() as url:
        database = Database(url, tmp_path / "home")
        database.migrate()
        yield database
        database.close()


def record(rid: str, variant: str, ts: float) -> LedgerRecord:
    return LedgerRecord(
        request_id=rid, ts=ts, tenant="t", key_id="k", surface="openai", alias="a",
        experiment="exp", variant=variant, target="bedrock:m", region=None, status=200,
        error_class=None, attempts=1, cache_hit=False, stream=False, input_tokens=1,
        output_tokens=1, cache_read_tokens=0, cache_write_tokens=0, cost_pusd=0,
        pricing="priced", cache_savings_pusd=None, latency_ms=5.0, upstream_ms=4.0, ttft_ms=None,
    )  # fmt: skip


def test_grades_replace_forced_notes_stay_out_of_the_ratio(db: Database) -> None:
    rows = [record(f"c{i}", "control", i) for i in range(30)]
    rows += [record(f"t{i}", "tuned", 100 + i) for i in range(30)]
    rows += [record(f"f{i}", "tuned", 200 + i) for i in range(60)]  # forced to one arm
    with db.transaction() as cur:
        cur.insert_new("ledger", COLUMNS, [as_row(r) for r in rows], "request_id")
    grades = [store.GradeRow(r.request_id, "g", 0.0, "", "live", 1.0) for r in rows]
    store.write(db, grades)
    better = [
        store.GradeRow(r.request_id, "g", 1.0, "match", "replay", 2.0)
        for r in rows
        if r.variant == "tuned"
    ]
    forced = [store.ForcedRow(f"f{i}", "exp", "tuned", 3.0) for i in range(60)]
    store.write(db, better, forced)
    store.write(db, [], forced)  # noted again: kept once
    assert db.query("SELECT COUNT(*) FROM grades")[0][0] == 120
    assert db.query("SELECT COUNT(*) FROM forced_arms")[0][0] == 60

    experiment = Experiment(
        "exp",
        {n: Arm(n, (parse_target("bedrock:m"),)) for n in ("control", "tuned")},
        {"control": 50, "tuned": 50},
    )
    doc = report(db, experiment, ReportOptions(metric="grader:g", min_samples=20))
    arms = {a["name"]: a for a in doc["arms"]}
    assert arms["control"]["outcome_mean"] == 0.0 and arms["tuned"]["outcome_mean"] == 1.0
    assert arms["tuned"]["n"] == 90 and doc["forced"] == 60
    assert not doc["sample_ratio"]["mismatch"]  # 30/30 assigned; the 60 forced do not count
    assert doc["verdict"]["kind"] == "candidate better"
    other = report(db, experiment, ReportOptions(metric="grader:nope"))
    assert all(a["outcomes"] == 0 for a in other["arms"])
    with pytest.raises(ValueError, match="metric"):
        report(db, experiment, ReportOptions(metric="votes"))
