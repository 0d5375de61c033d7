"""``/metrics`` under ``strata serve --workers N``: a scrape reaches one worker (the kernel picks
the socket), so each worker publishes its metrics core, once a second, to a folder the
supervisor made for this run, and the worker a scrape reaches answers for all of them: its own
figures live, the others' as of their last publication.

A worker that died and was restarted takes up its predecessor's last figures, so the counters
Prometheus sees do not fall back when one worker restarts (at most a period's increments are
lost with it). Breaker states merge to the worst any worker holds. Only ``/metrics`` reads the
merged view: CloudWatch and EMF push from every worker, each its own share.

``encode`` and ``merge`` are pure; ``PeerMetrics`` does the file I/O. Publishing and merging run
in threads, never on the event loop: with tenant labels a core can hold thousands of series, and
4,000 of them took 47 ms to encode and 181 ms to merge. They read the live core through one-step
copies (``list``/``dict`` of a dict or list is atomic under the GIL), so a series or an error class
added meanwhile by the loop cannot break them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.observability.metrics import Histogram, Labels, MetricsCore, Series
from gateway.observability.prometheus import BreakerStates

log = logging.getLogger("strata.observability.peers")

PERIOD_S = 1.0
# A breaker's state, worst last: merged views show the worst state any worker holds.
_SEVERITY = ("closed", "half_open", "open")


@dataclass(frozen=True)
class WorkerSlot:
    """Which worker this process is, and where the workers of its supervisor publish."""

    index: int
    folder: Path


def encode(core: MetricsCore, breakers: Iterable[tuple[str, str]]) -> bytes:
    return orjson.dumps(_snapshot(core, breakers))


def merge(core: MetricsCore, data: bytes) -> list[tuple[str, str]]:
    """Add a published core into ``core``; returns the breaker states it held."""
    return _merge_doc(core, orjson.loads(data))


def _snapshot(core: MetricsCore, breakers: Iterable[tuple[str, str]]) -> dict[str, Any]:
    series = [[list(labels), _series_doc(s)] for labels, s in core.series()]  # series(): a copy
    return {"series": series, "overflowed": core.overflowed, "breakers": list(breakers)}


def _merge_doc(core: MetricsCore, doc: dict[str, Any]) -> list[tuple[str, str]]:
    for labels, fields in doc["series"]:
        _add(core.series_for(_labels(labels)), fields)
    core.overflowed += int(doc["overflowed"])
    return [(str(target), str(state)) for target, state in doc["breakers"]]


def worst(states: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    out: dict[str, str] = {}
    for target, state in states:
        seen = out.get(target)
        if seen is None or _rank(state) > _rank(seen):
            out[target] = state
    return sorted(out.items())


class PeerMetrics:
    def __init__(
        self,
        slot: WorkerSlot,
        core: MetricsCore,
        breakers: BreakerStates,
        period_s: float = PERIOD_S,
    ) -> None:
        self._slot, self._core, self._breakers, self._period_s = slot, core, breakers, period_s
        self._own = slot.folder / f"metrics-{slot.index}.json"
        # Breaker states also go on their own: the dashboard reads them without the series.
        self._own_breakers = slot.folder / f"breakers-{slot.index}.json"

    async def start(self, stack: AsyncExitStack) -> None:
        self._resume()
        task = asyncio.ensure_future(self._publish_every_period())
        stack.push_async_callback(self._last_publish, task)

    def view(self) -> tuple[MetricsCore, list[tuple[str, str]]]:
        """This worker's core and breakers merged with every other worker's last ones. Call it
        from a thread (``/metrics`` does): it reads files and may take a while."""
        merged = MetricsCore(tenant_label=self._core.tenant_label)
        _merge_doc(merged, _snapshot(self._core, []))  # its own figures: no JSON round trip
        states = list(self._breakers())
        for path in self._others("metrics"):
            try:
                states += merge(merged, path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # A worker's file vanished or is from an incompatible build: skip it.
                log.debug("skipping %s: %r", path.name, exc)
        return merged, worst(states)

    def breaker_states(self) -> list[tuple[str, str]]:
        """Every worker's breakers, the worst state of each, from the small files only."""
        states = list(self._breakers())
        for path in self._others("breakers"):
            try:
                states += [(str(t), str(st)) for t, st in orjson.loads(path.read_bytes())]
            except (OSError, ValueError, TypeError) as exc:
                log.debug("skipping %s: %r", path.name, exc)
        return worst(states)

    def _others(self, kind: str) -> list[Path]:
        mine = (self._own, self._own_breakers)
        return [p for p in sorted(self._slot.folder.glob(f"{kind}-*.json")) if p not in mine]

    def _resume(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            merge(self._core, self._own.read_bytes())
            log.info("worker %d: carrying on from its predecessor's metrics", self._slot.index)

    async def _publish_every_period(self) -> None:
        while True:
            await asyncio.sleep(self._period_s)
            await self._publish()

    async def _publish(self) -> None:
        breakers = list(self._breakers())
        try:
            await asyncio.to_thread(self._write_both, breakers)
        except OSError as exc:
            log.warning("worker %d: cannot publish its metrics: %r", self._slot.index, exc)

    def _write_both(self, breakers: list[tuple[str, str]]) -> None:
        _write(self._own, encode(self._core, breakers))
        _write(self._own_breakers, orjson.dumps(breakers))

    async def _last_publish(self, task: asyncio.Future[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._publish()  # a restarted worker then carries on from these


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


def _rank(state: str) -> int:
    return _SEVERITY.index(state) if state in _SEVERITY else 0


def _labels(raw: list[Any]) -> Labels:
    alias, target, variant, tenant = (str(v) for v in raw)
    return alias, target, variant, tenant


def _series_doc(s: Series) -> dict[str, Any]:
    return {
        "requests": s.requests,
        "attempts": s.attempts,
        "errors": dict(s.errors),
        "refusals": dict(s.refusals),
        "statuses": {str(k): v for k, v in dict(s.statuses).items()},
        "cache": dict(s.cache),
        "tokens": list(s.tokens),
        "cost_pusd": s.cost_pusd,
        "saved_pusd": s.saved_pusd,
        "unpriced": s.unpriced,
        "hist": {name: _hist_doc(h) for name, h in s.hist.items()},
    }


def _hist_doc(h: Histogram) -> dict[str, Any]:
    # An empty histogram's minimum is +inf, which JSON cannot carry: None stands for it.
    minimum = None if h.count == 0 else h.minimum
    return {
        "counts": list(h.counts),
        "total": h.total,
        "count": h.count,
        "min": minimum,
        "max": h.maximum,
    }


def _add(s: Series, doc: dict[str, Any]) -> None:
    s.requests += int(doc["requests"])
    s.attempts += int(doc["attempts"])
    s.errors.update(Counter({str(k): int(v) for k, v in doc["errors"].items()}))
    s.refusals.update(Counter({str(k): int(v) for k, v in doc["refusals"].items()}))
    s.statuses.update(Counter({int(k): int(v) for k, v in doc["statuses"].items()}))
    s.cache.update(Counter({str(k): int(v) for k, v in doc["cache"].items()}))
    tokens = [int(n) for n in doc["tokens"]]
    if len(tokens) == len(s.tokens):
        s.tokens = [a + b for a, b in zip(s.tokens, tokens, strict=True)]
    s.cost_pusd += int(doc["cost_pusd"])
    s.saved_pusd += int(doc["saved_pusd"])
    s.unpriced += int(doc["unpriced"])
    for name, h in doc["hist"].items():
        mine = s.hist.get(name)
        counts = [int(n) for n in h["counts"]]
        if mine is None or len(counts) != len(mine.counts):
            continue  # bucket bounds of another build: nothing sound to add
        mine.counts = [a + b for a, b in zip(mine.counts, counts, strict=True)]
        mine.total += float(h["total"])
        mine.count += int(h["count"])
        if h["min"] is not None:
            mine.minimum = min(mine.minimum, float(h["min"]))
        mine.maximum = max(mine.maximum, float(h["max"]))
