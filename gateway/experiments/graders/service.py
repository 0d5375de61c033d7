"""Live grading, off the hot path.

- ``admit`` (an admit stage that never refuses): draws, per configured grader, whether this
  call of the alias is graded (its ``sample`` fraction). Only then is the answer's text kept,
  in memory, on ``call.outcome.answer``.
- the settle hook (``__call__``): queues (grader, sample) jobs on a bounded queue without
  waiting; a full queue drops the job and counts it. It also notes calls whose arm an admin
  forced, for the sample-ratio check.
- workers (``concurrency`` of them) grade with a timeout each; a grader that raises or hangs is
  counted (``strata_grader_results_total{result="error"|"timeout"}``) and logged by type, never
  seen by the request. Grades are written in batches beside the ledger record.

The judge's own calls carry ``JUDGE`` in their context and are never graded themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.accounting.store import Database, StoreUnavailable
from gateway.experiments.graders import store
from gateway.experiments.graders.base import Grader, Sample, chat_of
from gateway.experiments.graders.text import NoReference
from gateway.logs import code_location
from gateway.pipeline.call import Call, Outcome

log = logging.getLogger("strata.graders")

JUDGE = "graders.judge"  # call.context key of a judge's own call
SAMPLED = "graders.sampled"  # call.context key: the graders this call was drawn for
RESULTS = ("ok", "skipped", "error", "timeout", "dropped")
_FLUSH_S = 0.2
_MAX_UNWRITTEN = 10_000

Writer = Callable[[Database, Sequence[store.GradeRow], Sequence[store.ForcedRow]], None]


@dataclass(frozen=True)
class Configured:
    grader: Grader
    sample: Mapping[str, float]  # alias → fraction of its calls graded
    timeout_s: float = 60.0


class GraderService:
    def __init__(
        self,
        graders: Mapping[str, Configured],
        db: Database | None,
        *,
        queue_size: int = 1000,
        concurrency: int = 4,
        rng: random.Random | None = None,
        writer: Writer = store.write,
    ) -> None:
        self.graders = dict(graders)
        self._db = db
        self._queue: asyncio.Queue[tuple[str, Sample]] = asyncio.Queue(maxsize=queue_size)
        self._concurrency = concurrency
        self._rng = rng or random.Random()
        self._writer = writer
        self.counts: Counter[tuple[str, str]] = Counter()  # (grader, result)
        self.write_errors = 0
        self._grades: list[store.GradeRow] = []
        self._forced: list[store.ForcedRow] = []
        self._unwritten = asyncio.Event()  # grades or notes wait for _flush_every
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self._by_alias: dict[str, list[tuple[str, float]]] = {}
        for name, configured in self.graders.items():
            for alias, fraction in configured.sample.items():
                self._by_alias.setdefault(alias, []).append((name, fraction))

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()) for _ in range(self._concurrency)]
        self._tasks.append(loop.create_task(self._flush_every()))

    async def close(self, drain_s: float = 5.0) -> None:
        """Grade what is queued for up to ``drain_s``, then stop and write what is graded."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle(), drain_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()

    async def idle(self) -> None:
        """Until nothing is queued or being graded, and every grade is written."""
        await self._queue.join()
        await self.flush()

    # -- the request path: quick and never raising into it ---------------------------------

    async def admit(self, call: Call) -> None:
        plan = call.plan
        if plan is None or plan.alias is None or JUDGE in call.context:
            return
        drawn = [n for n, f in self._by_alias.get(plan.alias, ()) if self._rng.random() < f]
        if drawn:
            call.context[SAMPLED] = drawn
            if call.outcome.answer is None:  # another stage (stored bodies) may want it too
                call.outcome.answer = []

    async def __call__(self, call: Call, outcome: Outcome) -> None:
        if call.hints.arm is not None and outcome.variant is not None and outcome.experiment:
            row = store.ForcedRow(call.request_id, outcome.experiment, outcome.variant, time.time())
            self._forced.append(row)
            self._unwritten.set()
        drawn = call.context.get(SAMPLED)
        if not drawn or outcome.answer is None:
            return
        answer = "".join(outcome.answer)
        if outcome.error is not None or outcome.error_class is not None:
            return  # an error or a cut stream: the error rate counts it, not a grade
        sample = Sample(
            call.request_id,
            chat_of(call.request),
            answer,
            alias=outcome.alias,
            variant=outcome.variant,
            tenant=call.principal.tenant,
        )
        for name in drawn:
            try:
                self._queue.put_nowait((name, sample))
            except asyncio.QueueFull:
                self.counts[name, "dropped"] += 1

    # -- off the request path ---------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            name, sample = await self._queue.get()
            self._busy += 1
            try:
                await self._grade(name, sample)
            finally:
                self._busy -= 1
                self._queue.task_done()

    async def _grade(self, name: str, sample: Sample) -> None:
        configured = self.graders[name]
        try:
            grade = await asyncio.wait_for(configured.grader.grade(sample), configured.timeout_s)
        except TimeoutError:
            self.counts[name, "timeout"] += 1
            log.warning(
                "grader %s timed out after %gs on %s", name, configured.timeout_s, sample.request_id
            )
            return
        except NoReference:
            self.counts[name, "skipped"] += 1
            return
        except Exception as exc:
            self.counts[name, "error"] += 1
            # Type and place only: a message could quote the prompt or the answer.
            log.error(
                "grader %s failed on %s: %s at %s",
                name,
                sample.request_id,
                type(exc).__name__,
                code_location(exc),
            )
            return
        self.counts[name, "ok"] += 1
        self._grades.append(
            store.GradeRow(sample.request_id, name, grade.score, grade.detail, "live", time.time())
        )
        self._unwritten.set()

    async def _flush_every(self) -> None:
        # Woken by the first unwritten row, not by a timer: an idle gateway's loop stays asleep.
        while True:
            await self._unwritten.wait()
            await asyncio.sleep(_FLUSH_S)  # what the next moments grade goes in the same write
            self._unwritten.clear()
            await self.flush()
            if self._grades or self._forced:  # the write failed: they were kept, retry
                self._unwritten.set()

    async def flush(self) -> None:
        """Write the grades and forced-arm notes made so far (a report reads them next)."""
        if self._db is None or not (self._grades or self._forced):
            return
        grades, forced = self._grades, self._forced
        self._grades, self._forced = [], []
        try:
            await asyncio.to_thread(self._writer, self._db, grades, forced)
        except StoreUnavailable as exc:
            self.write_errors += 1
            log.warning("grades not written yet (%s); retrying", exc)
            # Kept for the next flush, oldest dropped beyond the bound.
            self._grades = (grades + self._grades)[-_MAX_UNWRITTEN:]
            self._forced = (forced + self._forced)[-_MAX_UNWRITTEN:]

    def stats(self) -> dict[str, object]:
        return {
            "queued": self._queue.qsize(),
            "grading": self._busy,
            "write_errors": self.write_errors,
            "graders": {
                name: {
                    "sample": dict(c.sample),
                    **{r: self.counts[name, r] for r in RESULTS},
                }
                for name, c in self.graders.items()
            },
        }


class GraderCollector(Collector):
    """``strata_grader_results_total{grader, result}`` and ``strata_grader_queue_depth``."""

    def __init__(self, service: GraderService) -> None:
        self._service = service

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        results = CounterMetricFamily(
            "strata_grader_results", "Grader runs by result", labels=["grader", "result"]
        )
        for name in self._service.graders:
            for result in RESULTS:
                results.add_metric([name, result], self._service.counts[name, result])
        yield results
        depth = GaugeMetricFamily("strata_grader_queue_depth", "Grading jobs waiting")
        depth.add_metric([], self._service._queue.qsize())
        yield depth
