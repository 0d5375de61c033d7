"""The metrics core: counters and histograms per (alias, target, variant[, tenant]), fed one
``CallRecord`` per call; exporters read ``series()`` and never touch the hot path.

Recording is a dict lookup and a few additions under no lock: the gateway runs one event loop,
and settle hooks run on it. Histograms have fixed bucket bounds (upper bounds, seconds), so
Prometheus and CloudWatch read the same counts.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from gateway.observability.record import TOKEN_KINDS, CallRecord

# Upstream-facing latencies: 5 ms to 2 min.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# The gateway's own overhead: 0.1 ms to 1 s.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
HISTOGRAMS = ("latency", "upstream", "overhead", "ttft")

Labels = tuple[str, str, str, str]  # alias, target, variant, tenant ("" when not labelled)
LABEL_NAMES = ("alias", "target", "variant", "tenant")


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, the last one is +Inf
    total: float = 0.0
    count: int = 0
    minimum: float = float("inf")
    maximum: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, calls at or under it), ending with +Inf: Prometheus' shape."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding quantile ``q`` (the largest value seen caps
        it), None when empty: a coarse figure, as bucketed histograms give."""
        if not self.count:
            return None
        rank = q * self.count
        for bound, running in self.cumulative():
            if running >= rank:
                return min(bound, self.maximum)
        return self.maximum


@dataclass
class Series:
    requests: int = 0
    attempts: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # by error class
    refusals: Counter[str] = field(default_factory=Counter)  # budget / rate_limit
    statuses: Counter[int] = field(default_factory=Counter)
    cache: Counter[str] = field(default_factory=Counter)  # hit, semantic-hit, miss, bypass
    tokens: list[int] = field(default_factory=lambda: [0] * len(TOKEN_KINDS))
    cost_pusd: int = 0  # pico-USD, exact, as the ledger sums it
    saved_pusd: int = 0
    unpriced: int = 0
    hist: dict[str, Histogram] = field(
        default_factory=lambda: {
            name: Histogram(OVERHEAD_BUCKETS if name == "overhead" else LATENCY_BUCKETS)
            for name in HISTOGRAMS
        }
    )

    def add(self, rec: CallRecord) -> None:
        self.requests += 1
        self.attempts += rec.attempts
        self.statuses[rec.status] += 1
        if rec.error_class is not None:
            self.errors[rec.error_class] += 1
        if rec.refusal is not None:
            self.refusals[rec.refusal] += 1
        if rec.cache != "off":
            self.cache[rec.cache] += 1
        for i, n in enumerate(rec.tokens):
            self.tokens[i] += n
        if rec.cost_pusd is None:
            self.unpriced += 1
        else:
            self.cost_pusd += rec.cost_pusd
        self.saved_pusd += rec.saved_pusd
        self.hist["latency"].observe(rec.latency_s)
        self.hist["overhead"].observe(rec.overhead_s)
        if rec.attempts:
            self.hist["upstream"].observe(rec.upstream_s)
        if rec.ttft_s is not None:
            self.hist["ttft"].observe(rec.ttft_s)


class MetricsCore:
    def __init__(self, *, tenant_label: bool = False, max_series: int = 10_000) -> None:
        self.tenant_label = tenant_label
        self._series: dict[Labels, Series] = {}
        self._max = max_series
        self.overflowed = 0  # calls folded into the catch-all series past max_series

    def record(self, rec: CallRecord) -> None:
        labels: Labels = (
            rec.alias,
            rec.target,
            rec.variant,
            rec.tenant if self.tenant_label else "",
        )
        series = self._series.get(labels)
        if series is None:
            if len(self._series) >= self._max:
                self.overflowed += 1
            series = self.series_for(labels)
        series.add(rec)

    def series_for(self, labels: Labels) -> Series:
        """The series of ``labels``, made if new; past ``max_series``, the catch-all one."""
        series = self._series.get(labels)
        if series is None:
            if len(self._series) >= self._max:
                # Callers can name targets directly; never let that grow memory without bound.
                return self._series.setdefault(("_other", "_other", "", ""), Series())
            series = self._series[labels] = Series()
        return series

    def series(self) -> list[tuple[Labels, Series]]:
        return list(self._series.items())
