"""Percentiles, the issue's targets, LiteLLM's published figures, and the printed table.

Pure functions over plain numbers; nothing here measures anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Issue 2: "the LiteLLM proxy (1 worker) adds 14-31 ms per request, all of it CPU, saturates
# at 35-68 requests/s, idles at ~390 MiB and takes 7 s to become healthy" (loopback Bedrock
# fake, this kind of machine).
LITELLM_ADDED_MS = (14.0, 31.0)
LITELLM_RPS = (35.0, 68.0)
LITELLM_IDLE_MIB = 390.0
LITELLM_STARTUP_S = 7.0
THROUGHPUT_FACTOR = 15.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99 of durations given in seconds, in milliseconds."""
    return {f"p{q}": percentile(values, q) * 1000 for q in (50, 95, 99)}


@dataclass(frozen=True)
class Figure:
    """One row of the verdict table. ``ratio`` is LiteLLM's figure over ours (or ours over
    LiteLLM's for throughput): how many times better Strata is; a range when LiteLLM's is."""

    name: str
    unit: str
    measured: float
    target: str
    passed: bool
    litellm: str
    ratio: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["measured"] = _finite(self.measured)
        return data


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _times(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    if low > high:
        low, high = high, low
    return f"{low:.1f}x" if abs(high - low) < 0.05 else f"{low:.1f}-{high:.1f}x"


def _less(peer: tuple[float, float], ours: float) -> str:
    # A measured 0 (below the clock's resolution) would make the ratio infinite.
    return _times(peer[0] / ours, peer[1] / ours) if ours > 0 else "n/a"


def added_latency(name: str, ms: float) -> Figure:
    return Figure(
        name, "ms", ms, "<= 1", ms <= 1.0, "14-31 ms", _less(LITELLM_ADDED_MS, max(ms, 1e-3))
    )


def cpu_per_request(name: str, ms: float) -> Figure:
    return Figure(
        name, "ms", ms, "<= 1", ms <= 1.0, "14-31 ms (all CPU)", _less(LITELLM_ADDED_MS, ms)
    )


def throughput(name: str, rps: float) -> list[Figure]:
    low, high = (THROUGHPUT_FACTOR * r for r in LITELLM_RPS)
    ratio = _times(rps / LITELLM_RPS[1], rps / LITELLM_RPS[0])
    return [
        Figure(name, "req/s", rps, f">= {high:.0f} (15x top)", rps >= high, "35-68 req/s", ratio),
        Figure(
            name + " vs LiteLLM's low end",
            "req/s",
            rps,
            f">= {low:.0f} (15x bottom)",
            rps >= low,
            "35 req/s",
            _times(rps / LITELLM_RPS[0], rps / LITELLM_RPS[0]),
        ),
    ]


def idle_rss(mib: float) -> Figure:
    return Figure(
        "idle RSS",
        "MiB",
        mib,
        "<= 120",
        mib <= 120.0,
        "~390 MiB",
        _times(LITELLM_IDLE_MIB / mib, LITELLM_IDLE_MIB / mib),
    )


def startup(seconds: float) -> Figure:
    return Figure(
        "start-up (spawn -> /readyz 200)",
        "s",
        seconds,
        "<= 2",
        seconds <= 2.0,
        "7 s",
        _times(LITELLM_STARTUP_S / seconds, LITELLM_STARTUP_S / seconds),
    )


def format_number(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def verdict_table(figures: Sequence[Figure]) -> str:
    rows = [
        [
            f.name,
            f"{format_number(f.measured)} {f.unit}",
            f"{f.target} {f.unit}",
            "PASS" if f.passed else "FAIL",
            f.litellm,
            f.ratio,
        ]
        for f in figures
    ]
    header = ["figure", "measured", "target", "verdict", "LiteLLM (issue)", "x better"]
    return table(header, rows)


def latency_table(runs: Sequence[dict[str, Any]]) -> str:
    """One row per (scenario, concurrency) run, as produced by ``overhead.summarise``."""
    rows = []
    for run in runs:
        total, first = run["latency_ms"], run["first_byte_ms"]
        cpu = run.get("gateway_cpu_ms_per_request")
        rows.append(
            [
                run["scenario"],
                str(run["concurrency"]),
                str(run["ok"]) + (f" ({run['errors']} err)" if run["errors"] else ""),
                format_number(total["p50"]),
                format_number(total["p95"]),
                format_number(total["p99"]),
                format_number(first["p50"]) if run["stream"] else "",
                format_number(run["throughput_rps"]),
                format_number(cpu) if cpu is not None else "",
            ]
        )
    header = [
        "scenario",
        "conc",
        "ok",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "TTFB p50",
        "req/s",
        "proxy CPU ms/req",
    ]
    return table(header, rows)
