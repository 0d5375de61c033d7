"""The benchmark's report: figures derived from the runs, and the text printed for people."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench import _figures as fig


def pair_added(runs: Sequence[dict[str, Any]], via: str) -> dict[str, dict[str, float]]:
    """Sequential p50 through ``via`` minus the same surface's direct p50 (OpenAI surfaces are
    compared with the Converse call they turn into), for total time and first byte."""
    seq = {(r["via"], r["surface"]): r for r in runs if r["concurrency"] == 1}
    out = {}
    for (v, surface), r in seq.items():
        base = seq.get(("direct", surface.replace("openai", "converse")))
        if v != via or base is None:
            continue
        out[surface] = {
            "total_p50_ms": r["latency_ms"]["p50"] - base["latency_ms"]["p50"],
            "first_byte_p50_ms": r["first_byte_ms"]["p50"] - base["first_byte_ms"]["p50"],
        }
    return out


def _find(runs: Sequence[dict[str, Any]], via: str, surface: str, conc: int) -> dict[str, Any]:
    for r in runs:
        if (r["via"], r["surface"], r["concurrency"]) == (via, surface, conc):
            return r
    return {"throughput_rps": math.nan, "gateway_cpu_ms_per_request": math.nan}


def verdicts(
    runs: Sequence[dict[str, Any]],
    idle_rss_mib: float,
    startup_s: Sequence[float],
    concurrency: int,
) -> list[fig.Figure]:
    added = pair_added(runs, "strata")
    rows: list[fig.Figure] = []
    for surface in ("converse", "openai"):
        ms = added.get(surface, {}).get("total_p50_ms", math.nan)
        rows.append(fig.added_latency(f"added latency p50, sequential, {surface}", ms))
    for surface in ("converse", "openai"):
        cpu = _find(runs, "strata", surface, concurrency)["gateway_cpu_ms_per_request"]
        rows.append(fig.cpu_per_request(f"gateway CPU per request, c{concurrency}, {surface}", cpu))
    rps = _find(runs, "strata", "converse", concurrency)["throughput_rps"]
    rows += fig.throughput(f"throughput at c{concurrency}, converse", rps)
    rows.append(fig.idle_rss(idle_rss_mib))
    rows.append(fig.startup(median(startup_s)))
    return rows


def median(values: Sequence[float]) -> float:
    return fig.percentile(values, 50)


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"strata gateway overhead: {meta['requests']} requests at c{meta['concurrency']}, "
        f"{meta['seq_requests']} sequential, after {meta['warmup']} warm-up; fake latency "
        f"{meta['fake_latency_ms']} ms, {meta['stream_chunks']} stream deltas; "
        f"{meta['cpus']} CPUs, load {meta['loadavg_before']} -> {meta['loadavg_after']}",
        "",
        fig.latency_table(report["runs"]),
        "",
    ]
    for name, added in report["added_ms"].items():
        parts = [
            f"{surface} {a['total_p50_ms']:+.2f} ms (first byte {a['first_byte_p50_ms']:+.2f})"
            for surface, a in added.items()
        ]
        lines.append(f"added p50, sequential, {name} - direct: " + "; ".join(parts))
    for name, s in report["servers"].items():
        runs = ", ".join(f"{t:.2f}" for t in s["startup_s"])
        lines.append(
            f"{name}: start-up {runs} s; RSS idle {s['idle_rss_mib']:.1f} MiB, after load "
            f"{s['rss_after_load_mib']:.1f}, peak {s['peak_rss_mib']:.1f}; torch loaded: "
            f"{'yes' if s['torch_loaded'] else 'no'}" + "".join(f"; {n}" for n in s["notes"])
        )
    ceilings = [
        f"{r['surface']} {1000 / r['gateway_cpu_ms_per_request']:.0f} req/s"
        for r in report["runs"]
        if r["via"] == "strata" and r["concurrency"] > 1 and r["gateway_cpu_ms_per_request"] > 0
    ]
    lines.append(
        "strata's CPU-bound ceiling per worker (1000 / CPU ms per request, saturated): "
        + ", ".join(ceilings)
    )
    lines += ["", fig.verdict_table([fig.Figure(**f) for f in _numeric(report["figures"])])]
    if "litellm_measured" in report:
        from bench._litellm import render_side_by_side

        lines += ["", render_side_by_side(report["litellm_measured"])]
    profiles = [
        f"{r['scenario']} c{r['concurrency']}: {r['profile']}"
        for r in report["runs"]
        if "profile" in r
    ]
    if profiles:
        lines += ["", "py-spy profiles (CPU split per request):", *profiles]
    if report["problems"]:
        lines += ["", "PROBLEMS (wrong or failed answers):", *report["problems"]]
    return "\n".join(lines)


def _numeric(figures: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**f, "measured": math.nan if f["measured"] is None else f["measured"]} for f in figures
    ]
