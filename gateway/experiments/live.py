"""The pipeline's view of the experiments in the state store: an in-memory snapshot, rebuilt
when the store's revision moves.

The route stage reads ``for_alias`` on every request: a dict lookup, never a database query.
A background task asks the database for the revision every ``refresh_s`` (one indexed
single-row read) and reloads the table only when it changed, so a promotion made through any
replica is in force on this one within ``refresh_s`` plus a reload. Writes made through this
replica reload at once (``reload``), so its own admin routes read their writes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

from gateway.accounting.store import Database, StoreUnavailable
from gateway.experiments import store
from gateway.experiments.store import ExperimentRecord
from gateway.pipeline.experiments import Arm, Experiment, StickyBy
from gateway.targets import parse_target

log = logging.getLogger("strata.experiments")


def build(record: ExperimentRecord) -> Experiment:
    """The routing object for a stored experiment, at its effective weights."""
    arms = {
        name: Arm(name, tuple(parse_target(t) for t in chain))
        for name, chain in record.arms.items()
    }
    sticky: StickyBy = record.sticky_by  # type: ignore[assignment]
    return Experiment(
        record.alias,
        arms,
        record.effective_weights(),
        sticky_by=sticky,
        salt=record.salt,
        name=record.name,
    )


class LiveExperiments:
    def __init__(
        self, db: Database, refresh_s: float, configured: frozenset[str] = frozenset()
    ) -> None:
        self._db = db
        self.refresh_s = refresh_s
        # strata.yaml experiments this replica's file still defines: a seeded experiment whose
        # section was removed from the file stops routing here (the file's alias takes over).
        self._configured = configured
        self._by_alias: dict[str, Experiment] = {}
        self._records: dict[str, ExperimentRecord] = {}
        self._revision = -1
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self.reloads = 0
        self.errors = 0

    # -- the hot path ------------------------------------------------------------------------

    def for_alias(self, alias: str) -> Experiment | None:
        return self._by_alias.get(alias)

    def aliases(self) -> list[str]:
        return list(self._by_alias)

    # -- reads for the admin routes ----------------------------------------------------------

    def records(self) -> list[ExperimentRecord]:
        return list(self._records.values())

    def record(self, name: str) -> ExperimentRecord | None:
        return self._records.get(name)

    def current(self, alias: str) -> ExperimentRecord | None:
        """The experiment routing ``alias`` now (the latest created on it)."""
        found = self._by_alias.get(alias)
        return self._records.get(found.name) if found is not None else None

    # -- refresh -----------------------------------------------------------------------------

    def reload(self, force: bool = False) -> bool:
        """Synchronous (run it off the loop): rebuild the snapshot if the revision moved.
        Returns whether it did."""
        with self._lock:
            revision = store.revision(self._db)
            if revision == self._revision and not force:
                return False
            records = store.load_all(self._db)
            by_alias: dict[str, Experiment] = {}
            for record in records:  # oldest first: the latest on an alias wins
                if record.source == "config" and record.name not in self._configured:
                    continue
                try:
                    by_alias[record.alias] = build(record)
                except ValueError as exc:  # a target that no longer parses: keep the others
                    log.error("experiment %r cannot route: %s", record.name, exc)
            # Two assignments, each atomic: a reader sees the old or the new snapshot.
            self._records = {r.name: r for r in records}
            self._by_alias = by_alias
            self._revision = revision
            self.reloads += 1
            return True

    async def run(self, after: Callable[[], Awaitable[None]] | None = None) -> None:
        """Poll the revision until cancelled; a database outage keeps the last snapshot.
        ``after`` runs after every poll (the ramps' check: one timer wakes the loop for both)."""
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await asyncio.to_thread(self.reload)
            except StoreUnavailable as exc:
                self.errors += 1
                log.warning("experiments: keeping the last snapshot (%s)", exc)
            if after is not None:
                await after()
