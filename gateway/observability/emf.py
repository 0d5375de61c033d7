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
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.observability.config import CloudWatchSection
from gateway.observability.metrics import Labels, MetricsCore
from gateway.observability.periods import Delta, Reader

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


def documents(namespace: str, found: list[Delta], timestamp_ms: int) -> list[dict[str, Any]]:
    """Pure: one EMF document per series that had calls in the period."""
    docs = []
    for d in found:
        lat, over = d.latency, d.overhead
        values: dict[str, float] = {
            "Requests": d.requests,
            "Errors": d.errors,
            "Attempts": d.attempts,
            "Refusals": d.refusals,
            "InputTokens": d.tokens[0],
            "OutputTokens": d.tokens[1],
            "CacheReadTokens": d.tokens[2],
            "CacheWriteTokens": d.tokens[3],
            "CostUSD": d.cost_usd,
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
            **dict(zip(DIMENSIONS, dimension_values(d.labels), strict=True)),
            **values,
        }
        docs.append(doc)
    return docs


def dimension_values(labels: Labels) -> list[str]:
    """CloudWatch dimension values may not be empty: "-" stands for none."""
    return [labels[0] or "-", labels[1] or "-", labels[2] or "-"]


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
        self._reader = Reader()
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
        found = self._reader.take(self._core.series())
        docs = documents(self._section.namespace, found, int(self._clock() * 1000))
        if docs:
            self._out.write(b"".join(orjson.dumps(d) + b"\n" for d in docs))
            self._out.flush()
        self.written += len(docs)
        return len(docs)


def _append(path: Path) -> IO[bytes]:
    """Opened once at start (a local file; appends of a few lines a period)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")  # the lifespan's exit stack closes it
