"""Experiments as shared state: the ``experiments`` table, its decision record
(``experiment_events``) and the revision every replica polls (migration 0003).

Synchronous, like the rest of the database layer (callers run it off the event loop). Every
change happens in one transaction that also writes its event and bumps the revision; a change
to an existing experiment is a compare-and-set on its ``version``, so two replicas racing to
advance the same ramp step cannot both succeed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from gateway.accounting.store import Cursor, Database
from gateway.errors import Conflict

Status = Literal["running", "paused", "stopped", "promoted", "rolled_back"]
STATUSES: tuple[Status, ...] = ("running", "paused", "stopped", "promoted", "rolled_back")
ACTIVE: frozenset[str] = frozenset({"running", "paused"})  # one of these per alias at most

_COLUMNS = (
    "name", "alias", "arms", "control", "candidate", "split", "weights", "sticky_by", "salt",
    "metric", "guardrails", "min_samples", "alpha", "status", "winner", "ramp", "ramp_step",
    "step_every_s", "step_started", "source", "seed_hash", "created_at", "created_by",
    "updated_at", "version",
)  # fmt: skip
_JSON = frozenset({"arms", "split", "weights", "guardrails", "ramp"})
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM experiments"


@dataclass(frozen=True)
class ExperimentRecord:
    """One experiment as stored. ``arms`` maps an arm name to its target chain (strings, as
    ``parse_target`` reads them); ``weights`` are the running weights, ``effective_weights``
    what routing uses given the status."""

    name: str
    alias: str
    arms: dict[str, list[str]]
    control: str
    candidate: str
    split: dict[str, float]
    weights: dict[str, float]
    sticky_by: str = "key"
    salt: str = "1"
    metric: str = "feedback"
    guardrails: list[str] = field(default_factory=list)
    min_samples: int = 100
    alpha: float = 0.05
    status: Status = "running"
    winner: str | None = None
    ramp: list[float] | None = None  # the candidate's share (percent) at each step
    ramp_step: int | None = None
    step_every_s: float | None = None
    step_started: float | None = None
    source: str = "api"
    seed_hash: str | None = None
    created_at: float = 0.0
    created_by: str = ""
    updated_at: float = 0.0
    version: int = 1

    def effective_weights(self) -> dict[str, float]:
        """Running: the weights; promoted: everything to the winner; paused, stopped and
        rolled back: everything to the control."""
        if self.status == "running":
            return dict(self.weights)
        to = self.winner if self.status == "promoted" and self.winner else self.control
        return {arm: (100.0 if arm == to else 0.0) for arm in self.arms}

    @property
    def ramping(self) -> bool:
        return self.status == "running" and self.ramp is not None and self.ramp_step is not None

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["effective_weights"] = self.effective_weights()
        body["ramping"] = self.ramping
        return body


@dataclass(frozen=True)
class Event:
    kind: str  # create, seed, reseed, weights, pause, resume, stop, ramp, step, promote, rollback
    actor: str
    reason: str | None = None
    evidence: Mapping[str, Any] | None = None


def _encode(record: ExperimentRecord) -> tuple[Any, ...]:
    values = asdict(record)
    return tuple(
        json.dumps(values[c]) if c in _JSON and values[c] is not None else values[c]
        for c in _COLUMNS
    )


def _decode(row: tuple[Any, ...]) -> ExperimentRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    for c in _JSON:
        if values[c] is not None:
            values[c] = json.loads(values[c])
    values["alpha"] = float(values["alpha"])
    values["min_samples"] = int(values["min_samples"])
    values["version"] = int(values["version"])
    return ExperimentRecord(**values)


def _event(cur: Cursor, record: ExperimentRecord, event: Event) -> None:
    cur.execute(
        "INSERT INTO experiment_events (experiment, ts, kind, actor, status, weights, version, "
        "reason, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.name,
            record.updated_at,
            event.kind,
            event.actor,
            record.status,
            json.dumps(record.effective_weights()),
            record.version,
            event.reason,
            json.dumps(event.evidence, default=str) if event.evidence is not None else None,
        ),
    )
    cur.execute("UPDATE experiment_revision SET revision = revision + 1 WHERE id = 1")


def revision(db: Database) -> int:
    return int(db.query("SELECT revision FROM experiment_revision WHERE id = 1")[0][0])


def load_all(db: Database) -> list[ExperimentRecord]:
    """Every experiment, oldest first (so a later one on the same alias overrides)."""
    return [_decode(r) for r in db.query(f"{_SELECT} ORDER BY created_at, name")]


def get(db: Database, name: str) -> ExperimentRecord | None:
    rows = db.query(f"{_SELECT} WHERE name = ?", (name,))
    return _decode(rows[0]) if rows else None


def _active_on(cur: Cursor, alias: str, other_than: str) -> str | None:
    cur.execute(
        "SELECT name FROM experiments WHERE alias = ? AND name <> ? AND status IN (?, ?)",
        (alias, other_than, *sorted(ACTIVE)),
    )
    row = cur.fetchone()
    return str(row[0]) if row else None


@contextmanager
def _unique(what: str) -> Iterator[None]:
    """A unique index refusing the write (a race the checks before it lost) as a Conflict."""
    import psycopg

    try:
        yield
    except (sqlite3.IntegrityError, psycopg.errors.UniqueViolation):
        raise Conflict(f"{what}: changed by another writer meanwhile; retry", param=what) from None


def insert(db: Database, record: ExperimentRecord, event: Event) -> ExperimentRecord:
    """Store a new experiment; Conflict if the name is taken or its alias already has a
    running or paused experiment."""
    now = time.time()
    record = replace(record, created_at=now, updated_at=now, version=1)
    with _unique("alias"), db.transaction() as cur:
        cur.execute("SELECT status FROM experiments WHERE name = ?", (record.name,))
        if cur.fetchone() is not None:
            raise Conflict(f"name: experiment {record.name!r} already exists", param="name")
        busy = _active_on(cur, record.alias, record.name)
        if busy is not None:
            raise Conflict(
                f"alias: {record.alias!r} already has experiment {busy!r} running or paused; "
                "stop or promote it first",
                param="alias",
            )
        placeholders = ", ".join("?" for _ in _COLUMNS)
        cur.execute(
            f"INSERT INTO experiments ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
            _encode(record),
        )
        _event(cur, record, event)
    return record


def update(
    db: Database, current: ExperimentRecord, changes: Mapping[str, Any], event: Event
) -> ExperimentRecord | None:
    """Apply ``changes`` if the stored version is still ``current.version``; the new record,
    or None when another writer got there first (nothing is written then)."""
    now = time.time()
    new = replace(current, **changes, updated_at=now, version=current.version + 1)
    sets = [c for c in _COLUMNS if c != "name"]
    encoded = dict(zip(_COLUMNS, _encode(new), strict=True))
    with _unique("alias"), db.transaction() as cur:
        if new.status in ACTIVE and current.status not in ACTIVE:
            busy = _active_on(cur, new.alias, new.name)
            if busy is not None:
                raise Conflict(
                    f"alias: {new.alias!r} already has experiment {busy!r} running or paused",
                    param="alias",
                )
        cur.execute(
            f"UPDATE experiments SET {', '.join(f'{c} = ?' for c in sets)} "
            "WHERE name = ? AND version = ?",
            (*(encoded[c] for c in sets), current.name, current.version),
        )
        if cur.rowcount != 1:
            return None
        _event(cur, new, event)
    return new


def seed(db: Database, record: ExperimentRecord) -> str | None:
    """A strata.yaml experiment: inserted when absent, its definition replaced when the file's
    section changed since it was seeded (runtime state such as status is kept); otherwise
    nothing. Returns what was done (``seed``, ``reseed``) or None. Safe for replicas starting
    together: the insert and the update are both conditional."""
    existing = get(db, record.name)
    if existing is None:
        try:
            insert(db, record, Event("seed", "config", "from strata.yaml"))
        except Conflict:
            return None  # another replica seeded it first, or an api experiment holds the alias
        return "seed"
    if existing.source != "config" or existing.seed_hash == record.seed_hash:
        return None
    fields = ("arms", "control", "candidate", "split", "weights", "sticky_by", "salt")
    changes = {f: getattr(record, f) for f in fields} | {"seed_hash": record.seed_hash}
    if existing.status != "running":
        changes.pop("weights")
    done = update(db, existing, changes, Event("reseed", "config", "strata.yaml changed"))
    return "reseed" if done else None


def events(db: Database, name: str) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT id, ts, kind, actor, status, weights, version, reason, evidence "
        "FROM experiment_events WHERE experiment = ? ORDER BY id",
        (name,),
    )
    return [
        {
            "id": int(r[0]),
            "ts": float(r[1]),
            "kind": r[2],
            "actor": r[3],
            "status": r[4],
            "weights": json.loads(r[5]),
            "version": int(r[6]),
            "reason": r[7],
            "evidence": json.loads(r[8]) if r[8] is not None else None,
        }
        for r in rows
    ]
