"""CloudWatch ``PutMetricData`` through aiobotocore's async client: every ``period_s`` the
period's totals per (alias, target, variant), and per alias, go out in a few calls (counts and
sums as single values, latency as values + counts from the core's histogram buckets), whatever
the request rate. Sending runs in its own task: a slow or failing CloudWatch never blocks a
request. A failed call is retried with backoff up to ``max_tries`` times, then dropped and
counted (``dropped_datums``); at most ``queue_batches`` batches wait, the oldest dropped first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from gateway.observability.config import CloudWatchSection
from gateway.observability.emf import DIMENSIONS, dimension_values
from gateway.observability.metrics import MetricsCore
from gateway.observability.periods import Delta, Reader

log = logging.getLogger("strata.cloudwatch")

# PutMetricData takes up to 1,000 datums and 1 MB a call ("PutMetricData", CloudWatch API
# Reference); 150 values per datum. 300 datums with ≤ 15 bucket values stay far under 1 MB.
DATUMS_PER_CALL = 300
COUNTS = (
    ("Requests", "requests"),
    ("Errors", "errors"),
    ("Attempts", "attempts"),
    ("Refusals", "refusals"),
)
TOKENS = ("InputTokens", "OutputTokens", "CacheReadTokens", "CacheWriteTokens")


def _datums(d: Delta, dims: list[dict[str, str]], at: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "MetricName": name,
            "Dimensions": dims,
            "Timestamp": at,
            "Value": float(getattr(d, f)),
            "Unit": "Count",
        }
        for name, f in COUNTS
    ]
    out += [
        {
            "MetricName": name,
            "Dimensions": dims,
            "Timestamp": at,
            "Value": float(n),
            "Unit": "Count",
        }
        for name, n in zip(TOKENS, d.tokens, strict=True)
    ]
    out.append(
        {
            "MetricName": "CostUSD",
            "Dimensions": dims,
            "Timestamp": at,
            "Value": d.cost_usd,
            "Unit": "None",
        }
    )
    for name, hist in (("Latency", d.latency), ("Overhead", d.overhead)):
        values, counts = [], []
        for bound, n in zip((*hist.bounds, hist.maximum), hist.counts, strict=True):
            if n > 0:
                values.append(min(bound, hist.maximum) * 1000)
                counts.append(float(n))
        if values:
            out.append(
                {
                    "MetricName": name,
                    "Dimensions": dims,
                    "Timestamp": at,
                    "Values": values,
                    "Counts": counts,
                    "Unit": "Milliseconds",
                }
            )
    return out


def metric_data(found: list[Delta], at: datetime) -> list[dict[str, Any]]:
    """Pure: the period's datums, per full dimension set and per alias."""
    data: list[dict[str, Any]] = []
    by_alias: dict[str, list[Delta]] = {}
    for d in found:
        values = dimension_values(d.labels)
        dims = [{"Name": n, "Value": v} for n, v in zip(DIMENSIONS, values, strict=True)]
        data += _datums(d, dims, at)
        by_alias.setdefault(values[0], []).append(d)
    for alias, group in by_alias.items():
        dims = [{"Name": "Alias", "Value": alias}]
        for d in group:  # CloudWatch sums datums of one period itself
            data += [x for x in _datums(d, dims, at) if "Values" not in x]
        for name in ("Latency", "Overhead"):
            merged: dict[float, float] = {}
            for d in group:
                for x in _datums(d, dims, at):
                    if x["MetricName"] == name:
                        for v, c in zip(x["Values"], x["Counts"], strict=True):
                            merged[v] = merged.get(v, 0.0) + c
            if merged:
                data.append(
                    {
                        "MetricName": name,
                        "Dimensions": dims,
                        "Timestamp": at,
                        "Values": list(merged),
                        "Counts": list(merged.values()),
                        "Unit": "Milliseconds",
                    }
                )
    return data


class CloudWatchExporter:
    def __init__(
        self,
        core: MetricsCore,
        section: CloudWatchSection,
        *,
        region: str,
        endpoint_url: str | None = None,
        max_tries: int = 4,
        queue_batches: int = 20,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._core = core
        self._section = section
        self._region = region
        self._endpoint = section.endpoint_url or endpoint_url
        self._max_tries = max_tries
        self._queue: deque[list[dict[str, Any]]] = deque(maxlen=queue_batches)
        self._reader = Reader()
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._client: Any = None
        self._closing = False
        self.calls = 0  # PutMetricData calls made (successful or not)
        self.sent_datums = 0
        self.dropped_datums = 0
        self.failures = 0

    async def start(self, stack: AsyncExitStack) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 1}
        )  # our own retry loop, so that a failure is counted and bounded here
        self._client = await stack.enter_async_context(
            get_session().create_client(
                "cloudwatch", region_name=self._region, endpoint_url=self._endpoint, config=config
            )
        )
        tasks = [asyncio.get_running_loop().create_task(t) for t in (self._tick(), self._send())]

        async def stop() -> None:
            tasks[0].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[0]
            self.collect()  # the last partial period
            self._closing = True
            self._wake.set()
            try:  # the sender finishes what it holds and the queue, within a bound
                await asyncio.wait_for(tasks[1], timeout=10)
            except TimeoutError:
                log.warning("CloudWatch: %d batches not sent at shutdown", len(self._queue))

        stack.push_async_callback(stop)

    def collect(self) -> None:
        """Read the period off the core and queue it in batches (no I/O)."""
        data = metric_data(self._reader.take(self._core.series()), datetime.now(UTC))
        for i in range(0, len(data), DATUMS_PER_CALL):
            if len(self._queue) == self._queue.maxlen:
                self.dropped_datums += len(self._queue[0])  # the oldest goes
            self._queue.append(data[i : i + DATUMS_PER_CALL])
        if data:
            self._wake.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._section.period_s)
            self.collect()

    async def _send(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue.popleft()
            await self._put(batch)

    async def _put(self, batch: list[dict[str, Any]]) -> None:
        for n in range(1, self._max_tries + 1):
            self.calls += 1
            try:
                await self._client.put_metric_data(
                    Namespace=self._section.namespace, MetricData=batch
                )
            except Exception as exc:  # botocore and connection errors alike: retry, then drop
                self.failures += 1
                if n == self._max_tries:
                    self.dropped_datums += len(batch)
                    log.warning(
                        "CloudWatch PutMetricData failed %d times (%s); %d datums dropped",
                        n,
                        type(exc).__name__,
                        len(batch),
                    )
                    return
                await self._sleep(random.uniform(0, min(8.0, 0.5 * 2**n)))  # full jitter
                continue
            self.sent_datums += len(batch)
            return
