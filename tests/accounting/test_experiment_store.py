"""The experiments store on both databases (SQLite and PostgreSQL): migration 0003, seeding
from strata.yaml, compare-and-set updates and the decision record."""

from __future__ import annotations

from gateway.accounting.store import Database
from gateway.experiments import store
from gateway.experiments.spec import seeded_record


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
