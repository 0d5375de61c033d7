"""Grades made outside the gateway (``strata ab replay`` grades its answers itself, with the
row's expected answer at hand) stored as outcomes beside the ledger: each request id must be a
ledger record of the experiment named in the path."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from gateway.accounting.service import Accounting
from gateway.errors import InvalidRequest
from gateway.experiments.graders import store

_FLUSH_WAIT_S = 5.0
_MAX_OUTCOMES = 1000


class OutcomeItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    detail: str = Field(default="", max_length=200)


class OutcomesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grader: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    outcomes: list[OutcomeItem] = Field(min_length=1, max_length=_MAX_OUTCOMES)


def _known(accounting: Accounting, experiment: str, ids: list[str]) -> set[str]:
    marks = ", ".join("?" for _ in ids)
    rows = accounting.db.query(
        f"SELECT request_id FROM ledger WHERE experiment = ? AND request_id IN ({marks})",
        (experiment, *ids),
    )
    return {str(r[0]) for r in rows}


def record_outcomes(accounting: Accounting, experiment: str, body: OutcomesBody) -> int:
    ids = [o.request_id for o in body.outcomes]
    known = _known(accounting, experiment, ids)
    if len(known) < len(set(ids)):
        # Records may still be in this replica's ledger buffer (sealed every 0.2 s).
        accounting.ledger.flush(_FLUSH_WAIT_S)
        known = _known(accounting, experiment, ids)
    missing = [i for i in ids if i not in known]
    if missing:
        raise InvalidRequest(
            f"outcomes: {missing[0]!r} is not a request of experiment {experiment!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            param="outcomes",
        )
    now = time.time()
    rows = [
        store.GradeRow(o.request_id, body.grader, o.score, o.detail, "replay", now)
        for o in body.outcomes
    ]
    store.write(accounting.db, rows)
    return len(rows)
