"""The experiments store on both databases (SQLite and PostgreSQL): migration 0003, seeding
from strata.yaml, compare-and-set updates and the decision record."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.accounting.ledger import Ledger
from gateway.accounting.store import Database
from gateway.errors import Conflict
from gateway.experiments import store
from gateway.experiments.live import LiveExperiments
from gateway.experiments.report import RatioWindow, ReportOptions, report, running_window
from gateway.experiments.spec import seeded_record
from gateway.pipeline.experiments import Arm, Experiment
from tests.accounting.test_feedback_store import _record


def test_seeding_is_idempotent_and_follows_edits(db: Database) -> None:
    record = seeded_record(
        "support", "key", "1", {"control": ["bedrock:a"], "tuned": ["bedrock:b"]},
        {"control": 90, "tuned": 10},
    )  # fmt: skip
    assert store.seed(db, record) == "seed"
    assert store.seed(db, record) is None
    assert [e["kind"] for e in store.events(db, "support")] == ["seed"]
    # A weight changed at run time survives a restart with the same strata.yaml …
    current = store.get(db, "support")
    assert current is not None
    moved = store.update(
        db, current, {"weights": {"control": 50, "tuned": 50}}, store.Event("weights", "t/k")
    )
    assert moved is not None and moved.version == 2
    assert store.seed(db, record) is None
    assert store.get(db, "support").weights == {"control": 50, "tuned": 50}  # type: ignore[union-attr]
    # … an edited strata.yaml section replaces the definition.
    edited = seeded_record(
        "support", "key", "2", {"control": ["bedrock:a"], "tuned": ["bedrock:c"]},
        {"control": 80, "tuned": 20},
    )  # fmt: skip
    assert store.seed(db, edited) == "reseed"
    after = store.get(db, "support")
    assert after is not None and after.arms["tuned"] == ["bedrock:c"] and after.salt == "2"
    # A stale version loses the compare-and-set and writes nothing.
    assert store.update(db, moved, {"status": "paused"}, store.Event("pause", "t/k")) is None
    assert [e["kind"] for e in store.events(db, "support")] == ["seed", "weights", "reseed"]


def test_running_window_is_the_latest_stretch_of_constant_weights() -> None:
    def event(ts: float, status: str, candidate: float) -> dict[str, object]:
        return {"ts": ts, "status": status, "weights": {"c": 100 - candidate, "t": candidate}}

    events = [event(1, "running", 10), event(2, "running", 25), event(3, "rolled_back", 0)]
    assert running_window(events) == RatioWindow(2, 3, {"c": 75, "t": 25})
    assert running_window(events[:2]) == RatioWindow(2, float("inf"), {"c": 75, "t": 25})
    assert running_window([event(1, "paused", 0)]) is None


def test_sample_ratio_reads_only_the_stretch_at_the_current_weights(
    db: Database, tmp_path: Path
) -> None:
    # 50/50 for 400 requests, then re-weighted to 90/10 for 400 more: a healthy split.
    ledger = Ledger(db, tmp_path / "home", flush_interval_s=0.05)
    ledger.start()
    t0, t1 = time.time() - 100, time.time() - 50
    try:
        for i in range(200):
            for arm in ("control", "tuned"):
                ledger.record(replace(_record(f"a{arm}{i}", arm), ts=t0 + i * 0.01))
        for i in range(400):
            arm = "tuned" if i % 10 == 0 else "control"
            ledger.record(replace(_record(f"b{i}", arm), ts=t1 + i * 0.01))
    finally:
        ledger.close()
    experiment = Experiment(
        "support",
        {"control": Arm("control", ()), "tuned": Arm("tuned", ())},
        {"control": 90, "tuned": 10},
    )
    window = RatioWindow(t1, float("inf"), {"control": 90, "tuned": 10})
    ok = report(db, experiment, ReportOptions(ratio_window=window))["sample_ratio"]
    assert ok["mismatch"] is False and ok["expected"] == {"control": 360.0, "tuned": 40.0}
    # All 800 records against today's weights: the old reading, a false alarm.
    assert report(db, experiment, ReportOptions())["sample_ratio"]["mismatch"] is True


def test_snapshot_routes_the_latest_experiment_per_alias_and_drops_removed_seeds(
    db: Database,
) -> None:
    seed = seeded_record(
        "support", "key", "1", {"control": ["bedrock:a"], "tuned": ["bedrock:b"]},
        {"control": 90, "tuned": 10},
    )  # fmt: skip
    store.seed(db, seed)
    still = LiveExperiments(db, 0.5, frozenset({"support"}))
    assert still.reload() is True and still.reload() is False  # only when the revision moves
    routed = still.for_alias("support")
    assert routed is not None and routed.weights == {"control": 90, "tuned": 10}
    removed = LiveExperiments(db, 0.5)  # a strata.yaml without that experiment any more
    removed.reload()
    assert removed.for_alias("support") is None and removed.record("support") is not None
    # A decision is in force at the next reload: the snapshot follows the store.
    current = store.get(db, "support")
    assert current is not None
    store.update(db, current, {"status": "paused"}, store.Event("pause", "t/k"))
    assert still.reload() is True
    paused = still.for_alias("support")
    assert paused is not None and paused.weights == {"control": 100.0, "tuned": 0.0}


def test_the_database_keeps_one_active_experiment_per_alias(db: Database) -> None:
    # What two replicas creating at once could slip past the check: the index refuses it.
    first = seeded_record("a1", "key", "1", {"control": ["bedrock:a"]}, {"control": 100})
    store.insert(db, replace(first, alias="shared"), store.Event("create", "t/k"))
    second = replace(first, name="a2", alias="shared")
    with db.transaction() as cur, pytest.raises(Exception) as raised:
        cur.execute(
            "INSERT INTO experiments SELECT ?, alias, arms, control, candidate, split, weights, "
            "sticky_by, salt, metric, guardrails, min_samples, alpha, status, winner, ramp, "
            "ramp_step, step_every_s, step_started, source, seed_hash, created_at, created_by, "
            "updated_at, version FROM experiments WHERE name = 'a1'",
            ("a2",),
        )
    assert "unique" in str(raised.value).lower()
    with pytest.raises(Conflict):
        store.insert(db, second, store.Event("create", "t/k"))
