"""The experiments the gateway runs, opened by the lifespan: seeds the store from strata.yaml,
keeps the pipeline's snapshot fresh, and advances ramps in the background.

Changes go through here (the admin routes call it): each is one store transaction with its
event, then a reload of this replica's snapshot so the change is in force here at once; the
other replicas pick it up on their next poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

from gateway.accounting.store import Database
from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.experiments import decide, store
from gateway.experiments.live import LiveExperiments, build
from gateway.experiments.spec import CheckTarget, CreateBody, record_from
from gateway.experiments.store import Event, ExperimentRecord

log = logging.getLogger("strata.experiments")

Lineage = Callable[[ExperimentRecord, Mapping[str, Any]], None]


@dataclass
class Experiments:
    db: Database
    live: LiveExperiments
    check_target: CheckTarget
    lineage: Lineage | None = None  # links decisions into the variant registry

    @classmethod
    async def open(
        cls,
        stack: AsyncExitStack,
        db: Database,
        seeds: list[ExperimentRecord],
        check_target: CheckTarget,
        *,
        refresh_s: float,
        lineage: Lineage | None = None,
    ) -> Experiments:
        for record in seeds:
            done = await asyncio.to_thread(store.seed, db, record)
            if done:
                log.info("experiment %r: %s from strata.yaml", record.name, done)
        live = LiveExperiments(db, refresh_s, frozenset(r.name for r in seeds))
        await asyncio.to_thread(live.reload, True)
        self = cls(db, live, check_target, lineage)
        # One task polls the revision and then checks the ramps, every refresh_s.
        poller = asyncio.ensure_future(live.run(after=self.check_ramps))
        stack.callback(poller.cancel)
        return self

    # -- reads ---------------------------------------------------------------------------------

    def find(self, name: str) -> ExperimentRecord:
        """By name, else the experiment now routing the alias of that name (``ab status
        support`` keeps working for an experiment created under another name)."""
        found = self.live.record(name) or self.live.current(name)
        if found is None:
            known = sorted(r.name for r in self.live.records())
            raise NotFound(
                f"no experiment {name!r}; experiments: {', '.join(known) or 'none'}",
                param="name",
            )
        return found

    def view(self, record: ExperimentRecord) -> dict[str, Any]:
        body = record.as_json()
        current = self.live.current(record.alias)
        body["routing"] = current is not None and current.name == record.name
        return body

    # -- changes -------------------------------------------------------------------------------

    async def create(self, body: CreateBody, actor: str) -> ExperimentRecord:
        record = record_from(body, self.check_target, actor)
        build(record)  # the targets parse into arms
        stored = await asyncio.to_thread(store.insert, self.db, record, Event("create", actor))
        await self._after(stored, {"kind": "create", "actor": actor})
        return stored

    async def change(
        self, record: ExperimentRecord, changes: Mapping[str, Any], event: Event
    ) -> ExperimentRecord:
        """Compare-and-set on the record's version; Conflict when it moved meanwhile."""
        new = await asyncio.to_thread(store.update, self.db, record, changes, event)
        if new is None:
            raise Conflict(
                f"experiment {record.name!r} changed meanwhile (version {record.version}); "
                "read it again and retry",
                param="version",
            )
        await self._after(new, {"kind": event.kind, "actor": event.actor, "reason": event.reason})
        return new

    async def set_weights(
        self, record: ExperimentRecord, weights: Mapping[str, object], actor: str
    ) -> ExperimentRecord:
        if record.status != "running":
            raise Conflict(
                f"experiment {record.name!r} is {record.status}; weights change only while it runs",
                param="status",
            )
        experiment = build(record)
        experiment.set_weights(weights)  # checks every arm is named, numbers >= 0, one > 0
        changes = {"weights": experiment.weights, "ramp": None, "ramp_step": None}
        return await self.change(record, changes, Event("weights", actor))

    async def transition(
        self, record: ExperimentRecord, action: str, actor: str
    ) -> ExperimentRecord:
        """pause, resume or stop."""
        allowed = {
            "pause": ({"running"}, "paused"),
            "resume": ({"paused"}, "running"),
            "stop": ({"running", "paused"}, "stopped"),
        }
        if action not in allowed:
            raise InvalidRequest(f"action: unknown {action!r}", param="action")
        sources, target = allowed[action]
        if record.status not in sources:
            raise Conflict(
                f"experiment {record.name!r} is {record.status}; cannot {action} it",
                param="status",
            )
        changes: dict[str, Any] = {"status": target}
        if action != "resume":
            changes |= {"ramp": None, "ramp_step": None}
        return await self.change(record, changes, Event(action, actor))

    async def promote(
        self,
        record: ExperimentRecord,
        actor: str,
        *,
        to: str | None = None,
        ramp: list[float] | None = None,
        step_every_s: float | None = None,
        min_samples: int | None = None,
    ) -> ExperimentRecord:
        """At once (to ``to``, else the verdict's winner) or, with ``ramp``, step by step.
        ``min_samples`` overrides the experiment's for this verdict."""
        judged = replace(record, min_samples=min_samples) if min_samples else record
        doc = await asyncio.to_thread(decide.evidence, self.db, judged)
        if ramp is not None:
            if to not in (None, record.candidate):
                raise InvalidRequest("to: a ramp moves traffic to the candidate", param="to")
            decision = decide.start_ramp(record, doc, ramp, step_every_s or 1800.0)
        else:
            decision = decide.promote(record, doc, to)
        return await self.apply(record, decision, actor)

    async def rollback(self, record: ExperimentRecord, actor: str, reason: str) -> ExperimentRecord:
        doc = await asyncio.to_thread(decide.evidence, self.db, record)
        return await self.apply(record, decide.rollback(record, doc, reason), actor)

    async def apply(
        self, record: ExperimentRecord, decision: decide.Decision, actor: str
    ) -> ExperimentRecord:
        event = Event(decision.kind, actor, decision.reason, decision.evidence)
        return await self.change(record, decision.changes, event)

    async def check_ramps(self) -> None:
        """Advance or roll back every ramping experiment (the poller runs this after each
        revision check). Every replica runs it; a step is a compare-and-set on the version, so
        only one replica takes it."""
        for record in self.live.records():
            if not record.ramping:
                continue
            try:
                await self._tick(record)
            except Exception:  # one experiment's trouble must not stop the others' ramps
                log.exception("experiment %r: ramp check failed; retrying", record.name)

    async def _tick(self, record: ExperimentRecord) -> None:
        decision = await asyncio.to_thread(decide.ramp_tick, self.db, record, time.time())
        if decision is None:
            return
        new = await asyncio.to_thread(
            store.update,
            self.db,
            record,
            decision.changes,
            Event(decision.kind, decide.RAMP_ACTOR, decision.reason, decision.evidence),
        )
        if new is None:
            return  # another replica decided first; the next reload shows what it did
        level = logging.WARNING if decision.kind == "rollback" else logging.INFO
        log.log(level, "experiment %r: %s: %s", new.name, decision.kind, decision.reason)
        await self._after(
            new, {"kind": decision.kind, "actor": decide.RAMP_ACTOR, "reason": decision.reason}
        )

    async def _after(self, record: ExperimentRecord, detail: Mapping[str, Any]) -> None:
        await asyncio.to_thread(self.live.reload)
        if self.lineage is not None:
            try:
                await asyncio.to_thread(self.lineage, record, detail)
            except Exception:  # the registry is a record, never a reason to fail a decision
                log.exception(
                    "experiment %r: could not link the decision into the variant registry",
                    record.name,
                )
