"""Writing outcomes beside the ledger: grades (one per request and grader, a second replaces
the first) and the calls whose arm an admin forced. Synchronous, like the database layer; run it
off the event loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.accounting.store import Database

_GRADE = (
    "INSERT INTO grades (request_id, grader, score, detail, source, ts) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (request_id, grader) DO UPDATE SET score = excluded.score, "
    "detail = excluded.detail, source = excluded.source, ts = excluded.ts"
)
_FORCED = (
    "INSERT INTO forced_arms (request_id, experiment, variant, ts) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (request_id) DO NOTHING"
)


@dataclass(frozen=True)
class GradeRow:
    request_id: str
    grader: str
    score: float
    detail: str
    source: str  # "live" | "replay"
    ts: float


@dataclass(frozen=True)
class ForcedRow:
    request_id: str
    experiment: str
    variant: str
    ts: float


def write(db: Database, grades: Sequence[GradeRow], forced: Sequence[ForcedRow] = ()) -> None:
    with db.transaction() as cur:
        if grades:
            rows = [(g.request_id, g.grader, g.score, g.detail, g.source, g.ts) for g in grades]
            cur.executemany(_GRADE, rows)
        if forced:
            cur.executemany(
                _FORCED, [(f.request_id, f.experiment, f.variant, f.ts) for f in forced]
            )
