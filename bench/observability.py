"""What observability costs: the gateway with every exporter on against all off, in one run.

    python -m bench.observability [--requests 2000] [--seq-requests 500] [--concurrency 32]
                                  [--split] [--sampler-ratio 0.1]

Two ``strata serve`` processes over the same Bedrock-wire fake, one after the other:

- **off**: access log disabled, no CloudWatch, no ``OTEL_EXPORTER_OTLP_ENDPOINT`` (only the
  metrics core records, as it always does);
- **on**: the JSON access log to a file, CloudWatch EMF lines to a file every 10 s, OTel spans
  and GenAI metrics exported over OTLP/HTTP to a loopback sink (a process of its own that
  answers 200), and ``/metrics`` scraped once a second;
- with ``--sampler-ratio R``, **on-sampled-R**: the same with ``OTEL_TRACES_SAMPLER=
  parentbased_traceidratio`` and ``OTEL_TRACES_SAMPLER_ARG=R`` (the GenAI metrics still count
  every call; only spans are sampled).

Figures per surface: gateway CPU per request (``/proc`` utime+stime), sequential p50/p95, the
sequential p50 the gateway adds to the fake called directly (measured first, in the same run),
throughput at ``--concurrency``, with the load averages (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import _procs as procs
from bench._load import wait_ready
from bench._scenarios import MODEL_ID, converse_scenarios, openai_scenarios
from bench.accounting import DEV_KEY, measure

SINK = (
    "import http.server as h\n"
    "class S(h.BaseHTTPRequestHandler):\n"
    "    def do_POST(self):\n"
    "        self.rfile.read(int(self.headers.get('content-length', 0)))\n"
    "        self.send_response(200); self.send_header('content-length', '0'); self.end_headers()\n"
    "    def log_message(self, *a): pass\n"
    "h.ThreadingHTTPServer(('127.0.0.1', {port}), S).serve_forever()\n"
)


async def start(
    name: str, workdir: Path, fake_port: int, extra_yaml: str, env: dict[str, str]
) -> tuple[procs.Proc, int]:
    home = workdir / f"{name}-home"
    home.mkdir()
    (workdir / name).mkdir()
    config = procs.write_gateway_config(workdir / name, fake_port, MODEL_ID)
    config.write_text(config.read_text() + extra_yaml, encoding="utf-8")
    port = procs.free_port()
    proc = procs.start_gateway(
        procs.strata_argv("direct", config, port),
        {**procs.gateway_env(home, DEV_KEY), **env},
        workdir / f"{name}.log",
        workdir,
    )
    if not await wait_ready(port, "/readyz", time.monotonic() + 90):
        proc.stop()
        raise RuntimeError(f"{name} gateway did not start:\n{proc.last_lines(8)}")
    return proc, port


def start_sink(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SINK.format(port=port)])


async def scrape(port: int, stop: asyncio.Event) -> int:
    n = 0
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {DEV_KEY}"}) as client:
        while not stop.is_set():
            r = await client.get(f"http://127.0.0.1:{port}/metrics")
            n += r.status_code == 200
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    return n


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = procs.make_workdir()
    started: list[procs.Proc] = []
    sink = None
    load = {"before": procs.loadavg()}
    try:
        fake, fake_port = procs.start_fake(workdir, latency_ms=args.latency_ms, chunks=8)
        started.append(fake)
        sink_port = procs.free_port()
        sink = start_sink(sink_port)
        on_yaml = (
            f"access_log:\n  path: {workdir / 'access.jsonl'}\n"
            f"cloudwatch:\n  mode: emf\n  period_s: 10\n  path: {workdir / 'emf.jsonl'}\n"
        )
        runs = [
            ("off", "access_log:\n  enabled: false\n", {}),
            ("on", on_yaml, {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}),
        ]
        if args.split:  # where the cost goes: everything but OpenTelemetry
            runs.append(("on-no-otel", on_yaml, {}))
        if args.sampler_ratio is not None:  # the SDK's standard sampler variables
            sampled = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": str(args.sampler_ratio),
            }
            runs.append((f"on-sampled-{args.sampler_ratio:g}", on_yaml, sampled))
        # The upstream alone, for the p50 each gateway adds (its Converse call is what both
        # surfaces make upstream).
        direct = await measure(
            fake, converse_scenarios("direct", fake_port, "", MODEL_ID)[:1], args
        )
        results: dict[str, Any] = {}
        for name, extra, env in runs:
            proc, port = await start(name, workdir, fake_port, extra, env)
            started.append(proc)
            scenarios = [
                *openai_scenarios(name, port, DEV_KEY, "default")[:1],
                *converse_scenarios(name, port, DEV_KEY, "default")[:1],
            ]
            stop = asyncio.Event()
            scraper = asyncio.create_task(scrape(port, stop)) if name == "on" else None
            results[name] = await measure(proc, scenarios, args)
            stop.set()
            if scraper is not None:
                results[name]["scrapes"] = await scraper
            proc.stop()
            started.remove(proc)
            load[f"after_{name}"] = procs.loadavg()
            if name == "on":
                lines = (workdir / "access.jsonl").read_bytes().count(b"\n")
        return {
            "direct": direct,
            "gateways": results,
            "access_log_lines": lines,
            "loadavg": load,
            "cpus": os.cpu_count(),
        }
    finally:
        for proc in reversed(started):
            proc.stop()
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def render(report: dict[str, Any], concurrency: int) -> str:
    direct_p50 = report["direct"]["converse"]["seq"]["latency_ms"]["p50"]
    rows = [
        f"| surface | exporters | CPU ms/req seq | CPU ms/req c{concurrency} | seq p50 ms "
        f"| added p50 seq ms | seq p95 ms | rps c{concurrency} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, gateway in report["gateways"].items():
        for surface, row in gateway.items():
            if surface == "scrapes":
                continue
            seq, conc = row["seq"], row[f"c{concurrency}"]
            rows.append(
                f"| {surface} | {name} | {seq['cpu_ms_per_request']:.2f} | "
                f"{conc['cpu_ms_per_request']:.2f} | {seq['latency_ms']['p50']:.2f} | "
                f"{seq['latency_ms']['p50'] - direct_p50:.2f} | "
                f"{seq['latency_ms']['p95']:.2f} | {conc['throughput_rps']:.0f} |"
            )
    rows.append(
        f"\nthe fake called directly (Converse): seq p50 {direct_p50:.2f} ms"
        f"\naccess log lines: {report['access_log_lines']}; /metrics scrapes: "
        f"{report['gateways']['on'].get('scrapes')}; load average: {report['loadavg']}"
    )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.observability")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--seq-requests", type=int, default=500)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--split", action="store_true", help="also run all on but OpenTelemetry")
    p.add_argument(
        "--sampler-ratio",
        type=float,
        default=None,
        help="also run all on with OTEL_TRACES_SAMPLER=parentbased_traceidratio at this ratio",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = p.parse_args(argv)
    report = asyncio.run(bench(args))
    print(render(report, args.concurrency), flush=True)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    errors = sum(
        r[k]["errors"]
        for g in report["gateways"].values()
        for s, r in g.items()
        if s != "scrapes"
        for k in r
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
