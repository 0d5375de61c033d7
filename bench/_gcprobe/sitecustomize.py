"""Loaded by a gateway the saturation bench starts with this folder first on PYTHONPATH: times
every garbage collection through ``gc.callbacks`` and rewrites ``$STRATA_BENCH_GC_FILE`` (JSON:
per generation, count, total and longest pause in ms; every full collection's pause) after every
full collection and every 200th collection of any generation, in place (see ``_dump``). Never
imported by the gateway itself."""

from __future__ import annotations

import gc
import json
import os
import time

_PATH = os.environ.get("STRATA_BENCH_GC_FILE")
_stats = {g: {"count": 0, "total_ms": 0.0, "max_ms": 0.0} for g in (0, 1, 2)}
_full_ms: list[float] = []  # every full collection's pause, in order
_started = [0.0]
_seen = [0]
_written = [0]  # the file's length: never shrinks


def _dump() -> None:
    assert _PATH is not None
    doc = {
        "generations": _stats,
        "full_ms": _full_ms,
        "thresholds": gc.get_threshold(),
    }
    # No ``gc.get_freeze_count()`` here: it counts the permanent generation by walking it, one
    # object at a time. With the gateway's frozen start-up heap (~130,000 objects) that took
    # ~14 ms, on the event loop, after every full collection: a stall of the probe's own.
    # Overwritten in place, padded to its longest so far, never replaced or truncated: this runs
    # on the gateway's event loop, and a replaced file's freed blocks are discarded synchronously
    # on a filesystem mounted with ``discard`` (this machine's root). That discard, inside
    # rename(2), froze the loop for 100-600 ms now and then: the c=32 stalls bench/README.md
    # tells of. Trailing spaces are valid JSON.
    data = json.dumps(doc).encode()
    data += b" " * (_written[0] - len(data))
    _written[0] = len(data)
    fd = os.open(_PATH, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def _callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    pause = (time.perf_counter() - _started[0]) * 1000
    row = _stats[info["generation"]]
    row["count"] += 1
    row["total_ms"] += pause
    row["max_ms"] = max(row["max_ms"], pause)
    _seen[0] += 1
    if info["generation"] == 2:
        _full_ms.append(round(pause, 3))
    if info["generation"] == 2 or _seen[0] % 200 == 0:
        _dump()


if _PATH:
    gc.callbacks.append(_callback)
if os.environ.get("STRATA_BENCH_NO_HIREDIS"):
    # The baseline of an A/B from before hiredis was a dependency: redis-py's pure-Python
    # parser and packer, as that commit installed them.
    import sys

    sys.modules["hiredis"] = None  # type: ignore[assignment]
