"""Prompt and answer text of calls on routes that opt in (``store_bodies: true``).

The ledger keeps no text; these rows are what ``strata feedback export`` pairs with the ratings.
An admit stage asks the pipeline to keep the answer's text (``Outcome.answer``, which the
graders use too); a settle hook queues one row per successful call of such a route; a writer
thread that the lifespan owns inserts them in batches (a hook must not wait on a database), and
``close`` drains the queue at shutdown.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.accounting.store import Database, StoreUnavailable
from gateway.pipeline.call import Call, Outcome

log = logging.getLogger("strata.experiments.bodies")

_INSERT = (
    "INSERT INTO bodies (request_id, tenant, alias, variant, prompt, prompt_sha256, answer, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING"
)
_BATCH = 200


def prompt_turns(call: Call) -> list[dict[str, str]]:
    """The request's text turns (system first), as preference data stores a prompt."""
    request = call.request
    turns = []
    if request.system_text():
        turns.append({"role": "system", "content": request.system_text()})
    for message in request.messages:
        text = "".join(block.text or "" for block in message.content)
        turns.append({"role": message.role, "content": text})
    return turns


def prompt_key(turns: Sequence[dict[str, str]]) -> tuple[str, str]:
    """The stored JSON and its sha256, which groups answers to the same prompt."""
    text = orjson.dumps(list(turns), option=orjson.OPT_SORT_KEYS).decode()
    return text, hashlib.sha256(text.encode()).hexdigest()


class BodyWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="strata-bodies", daemon=True)
        self._thread.start()

    def put(self, row: tuple[Any, ...]) -> None:
        self._queue.put(row)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            rows = [] if first is None else [first]
            stop = first is None
            while len(rows) < _BATCH and not stop:
                try:
                    row = self._queue.get_nowait()
                except queue.Empty:
                    break
                if row is None:
                    stop = True
                else:
                    rows.append(row)
            if rows:
                self._write(rows)
            if stop:
                return

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        for attempt in range(5):
            try:
                with self._db.transaction() as cur:
                    cur.executemany(_INSERT, rows)
                return
            except StoreUnavailable:
                time.sleep(0.2 * (attempt + 1))
        log.error("dropped %d stored bodies: the database stayed unreachable", len(rows))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)


class BodiesAdmit:
    """Asks for the answer's text on routes with ``store_bodies`` (refuses nothing)."""

    async def admit(self, call: Call) -> None:
        plan = call.plan
        if plan is not None and plan.policy.store_bodies and call.outcome.answer is None:
            call.outcome.answer = []


class BodiesSettle:
    """Queues the text of each successful call whose route has ``store_bodies``."""

    def __init__(self, writer: BodyWriter) -> None:
        self._writer = writer

    async def __call__(self, call: Call, outcome: Outcome) -> None:
        plan = call.plan
        if plan is None or not plan.policy.store_bodies or outcome.error is not None:
            return
        pieces = outcome.answer
        if pieces is None or outcome.error_class == "client_disconnected":
            return  # a cut stream's text is not the answer that was rated
        text, digest = prompt_key(prompt_turns(call))
        self._writer.put(
            (
                call.request_id, call.principal.tenant, outcome.alias, outcome.variant,
                text, digest, "".join(pieces), time.time(),
            )
        )  # fmt: skip
