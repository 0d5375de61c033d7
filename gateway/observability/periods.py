"""What happened in one period: the difference between two readings of the metrics core, per
series. The CloudWatch exporters (EMF lines, PutMetricData) both send these."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass

from gateway.observability.metrics import Histogram, Labels, Series


@dataclass(frozen=True)
class Delta:
    labels: Labels
    requests: int
    errors: int
    attempts: int
    refusals: int
    tokens: tuple[int, ...]  # in TOKEN_KINDS order
    cost_usd: float
    latency: Histogram
    overhead: Histogram


def _hist(now: Histogram, before: Histogram | None) -> Histogram:
    if before is None:
        return now
    delta = Histogram(now.bounds)
    delta.counts = [a - b for a, b in zip(now.counts, before.counts, strict=True)]
    delta.count = now.count - before.count
    delta.total = now.total - before.total
    delta.maximum = now.maximum  # an upper cap for quantiles; the period's own is not kept
    delta.minimum = now.minimum
    return delta


def deltas(current: list[tuple[Labels, Series]], previous: dict[Labels, Series]) -> list[Delta]:
    """Pure: the series that had calls since ``previous``, with what they had."""
    out = []
    for labels, s in current:
        p = previous.get(labels)
        requests = s.requests - (p.requests if p else 0)
        if requests <= 0:
            continue
        before = p.tokens if p else [0] * len(s.tokens)
        out.append(
            Delta(
                labels=labels,
                requests=requests,
                errors=sum(s.errors.values()) - (sum(p.errors.values()) if p else 0),
                attempts=s.attempts - (p.attempts if p else 0),
                refusals=sum(s.refusals.values()) - (sum(p.refusals.values()) if p else 0),
                tokens=tuple(a - b for a, b in zip(s.tokens, before, strict=True)),
                cost_usd=(s.cost_pusd - (p.cost_pusd if p else 0)) / 1e12,
                latency=_hist(s.hist["latency"], p.hist["latency"] if p else None),
                overhead=_hist(s.hist["overhead"], p.hist["overhead"] if p else None),
            )
        )
    return out


class Reader:
    """Reads the core once a period and keeps the reading for the next difference."""

    def __init__(self) -> None:
        self._previous: dict[Labels, Series] = {}

    def take(self, current: list[tuple[Labels, Series]]) -> list[Delta]:
        found = deltas(current, self._previous)
        self._previous = {labels: deepcopy(s) for labels, s in current}
        return found
