"""Ratings of served requests (``POST /v1/feedback``): checked against the ledger record of the
request (it must exist and belong to the rater's tenant) and stored beside it, one per request.

Synchronous, like the rest of the database layer; the route runs it off the event loop.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.accounting.ledger import Ledger
from gateway.accounting.store import Database
from gateway.auth import Principal
from gateway.errors import Forbidden, NotFound

# A rating may arrive before the ledger's writer committed the record (it seals every 0.2 s).
_FLUSH_WAIT_S = 5.0

_UPSERT = (
    "INSERT INTO feedback (request_id, tenant, key_id, score, label, comment, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET "
    "key_id = excluded.key_id, score = excluded.score, label = excluded.label, "
    "comment = excluded.comment, ts = excluded.ts"
)


class FeedbackBody(BaseModel):
    """``score`` in [0, 1] or ``label`` up (= 1) / down (= 0), not both."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    score: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    label: Literal["up", "down"] | None = None
    comment: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _one_outcome(self) -> FeedbackBody:
        if (self.score is None) == (self.label is None):
            raise ValueError("give exactly one of score (0..1) or label (up|down)")
        return self

    @property
    def value(self) -> float:
        if self.score is not None:
            return self.score
        return 1.0 if self.label == "up" else 0.0


def _owner(db: Database, request_id: str) -> str | None:
    rows = db.query("SELECT tenant FROM ledger WHERE request_id = ?", (request_id,))
    return str(rows[0][0]) if rows else None


def rate(db: Database, ledger: Ledger, who: Principal, body: FeedbackBody) -> dict[str, Any]:
    """Store the rating (replacing an earlier one); 404 for an unknown request id, 403 for a
    request of another tenant (admin keys included: a rating speaks for the tenant's user)."""
    owner = _owner(db, body.request_id)
    if owner is None:
        # Not `if ledger.backlog`: a batch between being sealed and queued counts in neither.
        ledger.flush(_FLUSH_WAIT_S)
        owner = _owner(db, body.request_id)
    if owner is None:
        raise NotFound(f"request_id: no request {body.request_id!r}", param="request_id")
    if owner != who.tenant:
        raise Forbidden(
            "request_id: a key may rate only its own tenant's requests", param="request_id"
        )
    now = time.time()
    with db.transaction() as cur:
        cur.execute(
            _UPSERT,
            (body.request_id, owner, who.key_id, body.value, body.label, body.comment, now),
        )
    return {
        "request_id": body.request_id,
        "score": body.value,
        "label": body.label,
        "comment": body.comment,
        "ts": now,
    }
