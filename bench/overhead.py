"""Gateway overhead: the same request sent straight to the Bedrock-wire fake and through Strata.

    python -m bench.overhead [--requests 2000] [--warmup 200] [--json out.json]
                             [--litellm --litellm-python /tmp/litellm-venv/bin/python]

One run starts the fake (``tests.fakes.bedrock_wire``) and ``strata serve`` with the bedrock
provider pointed at it, then measures p50/p95/p99 latency sequentially and at concurrency 32
for Converse, ConverseStream and the OpenAI surface (streamed and not), throughput at 32, the
gateway's CPU per request (/proc utime+stime over the run), its idle RSS and its start-up time
(spawn -> first 200 on /readyz), and prints them against issue 2's targets and LiteLLM's
published figures. Exit status: 0 when every answer was correct, 1 otherwise (targets missed
are reported, not failed on: the machine may be shared).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import _figures as fig
from bench import _procs as procs
from bench._load import Samples, run, run_client, wait_ready
from bench._profile import PySpy, summarise_file
from bench._report import median, pair_added, render, verdicts
from bench._scenarios import (
    MODEL_ID,
    Scenario,
    check_answer,
    converse_scenarios,
    openai_scenarios,
)

KEY = "sk-strata-bench-0123456789abcdef"


@dataclass
class Server:
    """A proxy under test: its process, port and the figures measured on it alone."""

    name: str
    proc: procs.Proc
    port: int
    startup_s: list[float] = field(default_factory=list)
    idle_rss_mib: float = math.nan
    notes: list[str] = field(default_factory=list)


async def start_proxy(
    name: str,
    argv_for: Callable[[int], list[str]],
    env: dict[str, str],
    workdir: Path,
    ready_path: str,
    runs: int,
    timeout_s: float,
) -> Server:
    """Start the proxy ``runs`` times, timing spawn -> first 200 on ``ready_path``; the last
    start is kept running. ``argv_for(port)`` builds the command line."""
    times: list[float] = []
    for i in range(runs):
        port = procs.free_port()
        log = workdir / f"{name}-{i}.log"
        started = time.monotonic()
        proc = procs.start_gateway(argv_for(port), env, log, cwd=workdir)
        deadline = started + timeout_s
        # Short polling windows, so that a proxy that dies at start is seen at once.
        while not (ready := await wait_ready(port, ready_path, time.monotonic() + 0.25)):
            if not proc.alive() or time.monotonic() > deadline:
                break
        elapsed = time.monotonic() - started
        if not ready:
            proc.stop()
            raise RuntimeError(f"{name} did not become ready:\n{proc.last_lines(8)}")
        times.append(elapsed)
        if i + 1 < runs:
            proc.stop()
    return Server(name, proc, port, times)


async def start_strata(args: argparse.Namespace, workdir: Path, fake_port: int) -> Server:
    home = workdir / "strata-home"
    home.mkdir()
    config = procs.write_gateway_config(workdir, fake_port, MODEL_ID)
    env = procs.gateway_env(home, KEY, args.transport)
    launches = ["strata", "direct"] if args.launch == "auto" else [args.launch]
    problem = ""
    for launch in launches:
        try:
            server = await start_proxy(
                "strata",
                functools.partial(procs.strata_argv, launch, config),
                env,
                workdir,
                "/readyz",
                args.startup_runs,
                args.startup_timeout,
            )
        except RuntimeError as exc:
            problem = str(exc).splitlines()[-1] if str(exc) else type(exc).__name__
            continue
        server.notes.append(f"launched with: {launch}")
        if problem:
            server.notes.append(f"'strata serve' console script failed: {problem}")
        return server
    raise RuntimeError(f"the gateway did not start: {problem}")


async def measure(
    scenario: Scenario,
    requests: int,
    concurrency: int,
    pids: dict[str, int],
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """One run, with the CPU each process (``pids``: role -> pid) spent on it; with
    ``profile_dir``, the proxy is sampled by py-spy meanwhile and the profile summarised."""
    spy = None
    if profile_dir is not None:
        tag = f"{scenario.via}-{scenario.surface}-c{concurrency}"
        spy = PySpy(pids["proxy"], profile_dir / f"{tag}.raw")
        await asyncio.sleep(1.0)  # py-spy attaches before the first request
    before = {role: procs.tree_cpu_seconds(pid) for role, pid in pids.items()}
    client_before = time.process_time()
    samples = await run(scenario.call, requests, concurrency)
    client_cpu = time.process_time() - client_before
    cpu = {role: procs.tree_cpu_seconds(pid) - before[role] for role, pid in pids.items()}
    result = summarise(scenario, concurrency, samples, cpu, client_cpu)
    if spy is not None:
        problem = spy.stop()
        text = problem or summarise_file(spy.out, result.get("gateway_cpu_ms_per_request"))
        spy.out.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
        result["profile"] = str(spy.out.with_suffix(".txt"))
    return result


def summarise(
    scenario: Scenario,
    concurrency: int,
    samples: Samples,
    cpu: dict[str, float],
    client_cpu: float,
) -> dict[str, Any]:
    per = 1000 / samples.served if samples.ok else math.nan
    out: dict[str, Any] = {
        "scenario": scenario.name,
        "via": scenario.via,
        "surface": scenario.surface,
        "stream": scenario.stream,
        "concurrency": concurrency,
        "ok": samples.ok,
        "errors": samples.errors,
        "first_error": samples.first_error,
        "latency_ms": fig.latency_ms(samples.total),
        "first_byte_ms": fig.latency_ms(samples.first_byte),
        "throughput_rps": samples.throughput,
        "wall_s": samples.wall_s,
        "fake_cpu_ms_per_request": cpu.get("fake", math.nan) * per,
        "client_cpu_ms_per_request": client_cpu * per,
    }
    if "proxy" in cpu:
        out["gateway_cpu_ms_per_request"] = cpu["proxy"] * per
    if samples.answer is not None:
        out["answer_problem"] = check_answer(scenario.surface, samples.answer.body)
    else:
        out["answer_problem"] = "no successful answer"
    return out


async def warm(scenarios: Sequence[Scenario], requests: int, concurrency: int) -> list[str]:
    """Warm every path (connection pools, lazy imports) and check each answers correctly."""
    problems = []
    for scenario in scenarios:
        samples = await run(scenario.call, requests, concurrency)
        body = samples.answer.body if samples.answer else b""
        problem = check_answer(scenario.surface, body) if samples.answer else None
        if samples.errors or samples.answer is None:
            problem = f"{samples.errors} errors, first: {samples.first_error or 'no answer'}"
        if problem:
            problems.append(f"{scenario.name}: {problem}")
    return problems


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = procs.make_workdir()
    started: list[procs.Proc] = []
    load_before = procs.loadavg()
    try:
        fake, fake_port = procs.start_fake(workdir, latency_ms=args.latency_ms, chunks=args.chunks)
        started.append(fake)
        strata = await start_strata(args, workdir, fake_port)
        started.append(strata.proc)
        servers = [strata]
        direct = converse_scenarios("direct", fake_port, "direct-key-unchecked", MODEL_ID)
        through = {"strata": converse_scenarios("strata", strata.port, KEY, "default")}
        through["strata"] += openai_scenarios("strata", strata.port, KEY, "default")
        if args.litellm:
            from bench._litellm import start_litellm

            litellm = await start_litellm(args, workdir, fake_port, KEY, start_proxy)
            started.append(litellm.proc)
            servers.append(litellm)
            through["litellm"] = openai_scenarios("litellm", litellm.port, KEY, "default")
        problems = await warm([s for ss in through.values() for s in ss], 5, 1)
        for server in servers:  # idle: started and a few requests served, no load yet
            await asyncio.sleep(1.0)
            server.idle_rss_mib = procs.rss_mib(server.proc.pid)
        problems += await warm(
            [*direct, *(s for ss in through.values() for s in ss)], args.warmup, args.concurrency
        )
        runs = []
        pids = {"fake": fake.pid}
        for conc, count in ((1, args.seq_requests), (args.concurrency, args.requests)):
            for scenario in direct:
                runs.append(await measure(scenario, count, conc, pids))
            for server in servers:
                for scenario in through[server.name]:
                    proxy = {**pids, "proxy": server.proc.pid}
                    profile = args.py_spy if conc > 1 and server is strata else None
                    runs.append(await measure(scenario, count, conc, proxy, profile))
        report = {
            "meta": {
                "requests": args.requests,
                "seq_requests": args.seq_requests,
                "warmup": args.warmup,
                "concurrency": args.concurrency,
                "fake_latency_ms": args.latency_ms,
                "stream_chunks": args.chunks,
                "cpus": os.cpu_count(),
                "loadavg_before": load_before,
                "loadavg_after": procs.loadavg(),
                "python": sys.version.split()[0],
            },
            "servers": {
                s.name: {
                    "startup_s": s.startup_s,
                    "startup_s_median": median(s.startup_s),
                    "idle_rss_mib": s.idle_rss_mib,
                    "rss_after_load_mib": procs.rss_mib(s.proc.pid),
                    "peak_rss_mib": procs.rss_mib(s.proc.pid, "VmHWM"),
                    "torch_loaded": procs.has_library(s.proc.pid, "libtorch"),
                    "notes": s.notes,
                }
                for s in servers
            },
            "runs": runs,
            "added_ms": {s.name: pair_added(runs, s.name) for s in servers},
            "problems": problems
            + [
                f"{r['scenario']} c{r['concurrency']}: {r['answer_problem'] or r['first_error']}"
                for r in runs
                if r["answer_problem"] or r["errors"]
            ],
        }
        figures = verdicts(runs, strata.idle_rss_mib, strata.startup_s, args.concurrency)
        report["figures"] = [f.to_json() for f in figures]
        if args.litellm:
            from bench._litellm import side_by_side

            report["litellm_measured"] = side_by_side(report, args.concurrency)
        return report
    finally:
        for proc in reversed(started):
            proc.stop()
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="requests per concurrent run")
    p.add_argument(
        "--seq-requests",
        type=int,
        default=None,
        help="requests per sequential run (default: --requests / 2)",
    )
    p.add_argument("--warmup", type=int, default=200, help="warm-up requests per scenario")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--latency-ms", type=float, default=0.0, help="the fake's latency per call")
    p.add_argument("--chunks", type=int, default=8, help="text deltas per streamed answer")
    p.add_argument("--startup-runs", type=int, default=3, help="start-ups timed (median shown)")
    p.add_argument("--startup-timeout", type=float, default=60.0)
    p.add_argument(
        "--launch",
        choices=["auto", "strata", "direct"],
        default="auto",
        help="'strata serve' console script, or gateway.cli.serve without the other "
        "packages' sub-apps; auto tries the script first",
    )
    p.add_argument(
        "--transport",
        choices=["direct", "aiobotocore"],
        default="direct",
        help="the gateway's Bedrock transport (STRATA_BEDROCK_TRANSPORT)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    p.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="profile the gateway with py-spy during each saturated run; writes "
        "DIR/<run>.raw and a summary DIR/<run>.txt (figures of that run are perturbed)",
    )
    p.add_argument("--keep-workdir", action="store_true", help="keep configs and logs")
    p.add_argument(
        "--litellm",
        action="store_true",
        help="also measure a LiteLLM proxy (1 worker) against the same fake",
    )
    p.add_argument(
        "--litellm-python",
        default="/tmp/litellm-venv/bin/python",
        help="python of a separate venv with 'litellm[proxy]' installed",
    )
    args = p.parse_args(argv)
    if args.seq_requests is None:
        args.seq_requests = max(1, args.requests // 2)
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    if min(args.requests, args.seq_requests, args.concurrency, args.startup_runs) < 1:
        p.error("counts must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run_client(bench(args))
    except RuntimeError as exc:
        print(f"bench.overhead: {exc}", file=sys.stderr)
        return 2
    print(render(report), flush=True)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
