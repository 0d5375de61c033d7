"""What ``bench.saturation`` prints: one line per measured row, each against its direct row, and
the workers' summary. Kept apart from the measuring."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench._saturation_rows import ROWS


@dataclass
class Measured:
    row: str
    variant: str
    load: str
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # seq | cN | cold


HEAD = (
    f"{'row':<28} {'var':<4} {'cpu seq':>7} {'cpu cN':>7} {'p50 seq':>7} {'added':>6} "
    f"{'ttfb+':>6} {'p50 cN':>7} {'p99 cN':>7} {'p99/50':>6} {'rps cN':>6} {'gc2':>9} "
    f"{'load':>16}"
)


_DIRECT: dict[str, dict[str, Any]] = {}


def line(m: Measured, concurrency: int) -> str:
    if m.variant == "-":
        _DIRECT[m.row] = m.runs
    row = next(r for r in ROWS if r.name == m.row)
    direct = _DIRECT.get(row.compare, {})
    if "cold" in m.runs:
        r = m.runs["cold"]
        base = direct.get("cold")
        added = r["latency_ms"]["p50"] - base["latency_ms"]["p50"] if base else math.nan
        return (
            f"{m.row:<28} {m.variant:<4} {r['cpu_ms_per_request']:>7.3f} {'':>7} "
            f"{r['latency_ms']['p50']:>7.2f} {added:>6.2f} {'':>6} {'':>7} "
            f"{r['latency_ms']['p99']:>7.2f} {'':>6} {r['throughput_rps']:>6.1f} "
            f"{'':>9} {m.load:>16}{_problem(r)}"
        )
    seq, conc = m.runs["seq"], m.runs[f"c{concurrency}"]
    dseq = direct.get("seq")
    added = seq["latency_ms"]["p50"] - dseq["latency_ms"]["p50"] if dseq else math.nan
    ttfb = (
        seq["first_byte_ms"]["p50"] - dseq["first_byte_ms"]["p50"]
        if dseq and row.stream
        else math.nan
    )
    p50, p99 = conc["latency_ms"]["p50"], conc["latency_ms"]["p99"]
    g = conc["gc_full"]
    gc = f"{g['count']}/{g['max_ms']:.0f}ms" if m.variant != "-" else ""
    return (
        f"{m.row:<28} {m.variant:<4} {seq['cpu_ms_per_request']:>7.3f} "
        f"{conc['cpu_ms_per_request']:>7.3f} {seq['latency_ms']['p50']:>7.2f} {added:>6.2f} "
        f"{ttfb:>6.2f} {p50:>7.2f} {p99:>7.2f} {p99 / p50 if p50 else math.nan:>6.2f} "
        f"{conc['throughput_rps']:>6.0f} {gc:>9} {m.load:>16}{_problem(seq)}{_problem(conc)}"
    )


def _problem(run: dict[str, Any]) -> str:
    if run["errors"] or run["answer_problem"]:
        return f"  PROBLEM: {run['errors']} errors {run['first_error']} {run['answer_problem']}"
    return ""


def render_workers(w: dict[str, Any]) -> str:
    if "skipped" in w:
        return f"workers row: skipped ({w['skipped']})"
    lines = []
    for label, r in w.items():
        if label == "ratio":
            continue
        lines.append(
            f"{label:<12} rps {r['throughput_rps']:>6.0f}  cpu {r['cpu_ms_per_request']:.3f} "
            f"ms/req  p50 {r['latency_ms']['p50']:.2f}  p99 {r['latency_ms']['p99']:.2f}"
        )
    lines.append(f"throughput ratio: {w['ratio']:.2f}x")
    return "\n".join(lines)
