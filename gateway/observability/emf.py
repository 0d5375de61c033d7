"""CloudWatch Embedded Metric Format: every ``period_s``, one JSON document per (alias, target,
variant) that had calls in the period, to stdout or a file, for the CloudWatch agent or Lambda to
turn into metrics. It reads the metrics core's totals and writes the difference since the last
period, so the hot path pays nothing for it.

Counts and sums are plain values; latency is sent as the period's p50, p99 and average (from the
core's bucketed histogram deltas), since EMF takes values, not bucket counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from copy import deepcopy
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.observability.config import CloudWatchSection
from gateway.observability.metrics import Histogram, Labels, MetricsCore, Series

log = logging.getLogger("strata.emf")

DIMENSIONS = ["Alias", "Target", "Variant"]
# (name, unit) of every metric a document may carry; the dashboards and alarms use these.
METRICS: tuple[tuple[str, str], ...] = (
    ("Requests", "Count"),
    ("Errors", "Count"),
    ("Attempts", "Count"),
    ("Refusals", "Count"),
    ("InputTokens", "Count"),
    ("OutputTokens", "Count"),
    ("CacheReadTokens", "Count"),
    ("CacheWriteTokens", "Count"),
    ("CostUSD", "None"),
    ("LatencyP50", "Milliseconds"),
    ("LatencyP99", "Milliseconds"),
    ("LatencyAvg", "Milliseconds"),
    ("OverheadAvg", "Milliseconds"),
)


def _hist_delta(now: Histogram, before: Histogram | None) -> Histogram:
    if before is None:
        return now
    delta = Histogram(now.bounds)
    delta.counts = [a - b for a, b in zip(now.counts, before.counts, strict=True)]
    delta.count = now.count - before.count
    delta.total = now.total - before.total
    delta.maximum = now.maximum  # an upper cap for the quantile; the period's own is unknown
    return delta


def documents(
    namespace: str,
    current: list[tuple[Labels, Series]],
    previous: dict[Labels, Series],
    timestamp_ms: int,
) -> list[dict[str, Any]]:
    """Pure: the EMF documents for the difference between two readings of the core."""
    docs = []
    for labels, s in current:
        p = previous.get(labels)
        requests = s.requests - (p.requests if p else 0)
        if requests <= 0:
            continue
        lat = _hist_delta(s.hist["latency"], p.hist["latency"] if p else None)
        over = _hist_delta(s.hist["overhead"], p.hist["overhead"] if p else None)
        before = p.tokens if p else [0] * len(s.tokens)
        tokens = [a - b for a, b in zip(s.tokens, before, strict=True)]
        values: dict[str, float] = {
            "Requests": requests,
            "Errors": sum(s.errors.values()) - (sum(p.errors.values()) if p else 0),
            "Attempts": s.attempts - (p.attempts if p else 0),
            "Refusals": sum(s.refusals.values()) - (sum(p.refusals.values()) if p else 0),
            "InputTokens": tokens[0],
            "OutputTokens": tokens[1],
            "CacheReadTokens": tokens[2],
            "CacheWriteTokens": tokens[3],
            "CostUSD": (s.cost_pusd - (p.cost_pusd if p else 0)) / 1e12,
            "LatencyP50": (lat.quantile(0.5) or 0.0) * 1000,
            "LatencyP99": (lat.quantile(0.99) or 0.0) * 1000,
            "LatencyAvg": lat.total / lat.count * 1000 if lat.count else 0.0,
            "OverheadAvg": over.total / over.count * 1000 if over.count else 0.0,
        }
        doc: dict[str, Any] = {
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [DIMENSIONS, ["Alias"]],
                        "Metrics": [{"Name": n, "Unit": u} for n, u in METRICS],
                    }
                ],
            },
            "Alias": labels[0] or "-",
            "Target": labels[1] or "-",
            "Variant": labels[2] or "-",
            **values,
        }
        docs.append(doc)
    return docs


class EmfExporter:
    def __init__(
        self,
        core: MetricsCore,
        section: CloudWatchSection,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._core = core
        self._section = section
        self._clock = clock
        self._previous: dict[Labels, Series] = {}
        self._out: IO[bytes] = sys.stdout.buffer
        self.written = 0  # documents written

    async def start(self, stack: AsyncExitStack) -> None:
        if self._section.path is not None:
            self._out = stack.enter_context(_append(Path(self._section.path)))
        task = asyncio.get_running_loop().create_task(self._loop())

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.flush()  # the last partial period is not lost at shutdown

        stack.push_async_callback(stop)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._section.period_s)
            try:
                self.flush()
            except Exception:
                log.exception("EMF flush failed")

    def flush(self) -> int:
        current = self._core.series()
        docs = documents(
            self._section.namespace, current, self._previous, int(self._clock() * 1000)
        )
        self._previous = {labels: deepcopy(s) for labels, s in current}
        if docs:
            self._out.write(b"".join(orjson.dumps(d) + b"\n" for d in docs))
            self._out.flush()
        self.written += len(docs)
        return len(docs)


def _append(path: Path) -> IO[bytes]:
    """Opened once at start (a local file; appends of a few lines a period)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")  # the lifespan's exit stack closes it
