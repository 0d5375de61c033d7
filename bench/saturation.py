"""Every path users run, side by side in one run, each against the direct upstream: the plain
path, every stage on (keys, Redis limits, budget, PostgreSQL ledger, metrics, cache miss), a
cache hit, streams, the cold path, and N workers.

    python -m bench.saturation [--requests 2000] [--seq-requests 300] [--cold-requests 200]
                               [--baseline DIR] [--rounds 1] [--workers 2] [--json out.json]

It starts two Bedrock-wire fakes (0 ms and ``--cold-latency-ms``, default 50 ms) and these
``strata serve`` processes, each with its own home:

- **plain**: the default path (dev key; the embedded SQLite ledger, metrics, the access log and
  the cache stage are on by default; the alias has no ``cache:``);
- **stages**: a database key scoped to the alias with RPM, TPM and a USD budget, Redis for the
  limits and budget counters, the ledger in a PostgreSQL schema made for the run (dropped after),
  metrics and access log, and ``cache:`` on the alias (requests at temperature 0). Its rows are
  *miss* (every request has a distinct system prompt: looked up, stored) and *hit* (one body,
  stored once before the run);
- **plain-cold** / **stages-cold**: the same two against the 50 ms fake, measured at
  ``--cold-rate`` requests/s (20) one at a time: the cold path, where nothing batches;
- **workers-N** (``--workers N``): the plain path under ``strata serve --workers N``, at
  concurrency only, for its throughput against one worker's. ``--workers`` comes from branch
  issue-17w; without it in ``strata serve --help`` the row says so and is skipped.

Per row, sequentially and at ``--concurrency`` (32): gateway CPU per request (``/proc``
utime+stime of the gateway's process tree, the ledger writer thread included), p50/p99, the
p99/p50 ratio at saturation, throughput, time to first byte for streams, and full garbage
collections seen during the saturated run (the gateway is started with ``bench/_gcprobe`` on
its path, which times every collection through ``gc.callbacks``). *added* is the gateway's
sequential p50 (TTFB for streams) minus the direct call's.

``--baseline DIR`` runs a second set of gateways from another source tree (``git archive
<commit> | tar -x -C DIR``) and interleaves the two row by row, so that before and after are
measured in the same minute under the same load. Load averages are printed with every row.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import _figures as fig
from bench import _procs as procs
from bench import _timeline
from bench._load import LOOPBACK, Samples, run, run_client, wait_ready
from bench._saturation_report import HEAD, Measured, line, render_workers
from bench._saturation_rows import ROWS, Row, request
from bench._scenarios import MODEL_ID, check_answer
from bench._stores import REDIS_URL, drop_run_stores, make_run_stores

DEV_KEY = "sk-strata-bench-0123456789abcdef"
GC_PROBE = Path(__file__).resolve().parent / "_gcprobe"
NO_HIREDIS_BASE = [False]  # --baseline-without-hiredis
TIMELINE: list[Path] = []  # --timeline DIR
NO_PRIME = [False]  # --no-prime
_RUN = itertools.count()


@dataclass
class Gateway:
    name: str  # plain | stages | plain-cold | stages-cold | workers-N
    variant: str  # new | base
    proc: procs.Proc
    port: int
    key: str
    gc_file: Path


# -- processes -----------------------------------------------------------------------------------


def write_config(workdir: Path, name: str, fake_port: int, cache: bool) -> Path:
    path = workdir / f"{name}.yaml"
    alias = f"bedrock:{MODEL_ID}"
    if cache:
        alias = f"\n    targets: [bedrock:{MODEL_ID}]\n    cache: {{ttl_s: 300}}"
    path.write_text(
        f"aliases:\n  default: {alias}\n"
        f"bedrock:\n  region: us-east-1\n  endpoint_url: http://{LOOPBACK}:{fake_port}\n",
        encoding="utf-8",
    )
    return path


def has_workers_option(code: Path) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", "from gateway.cli import app; app()", "serve", "--help"],
        env={**os.environ, "PYTHONPATH": str(code), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "--workers" in out.stdout


async def start_gateway(
    name: str,
    variant: str,
    code: Path,
    workdir: Path,
    config: Path,
    key: str,
    extra: dict[str, str],
    argv_extra: Sequence[str] = (),
) -> Gateway:
    home = workdir / f"{variant}-{name}-home"
    home.mkdir()
    gc_file = workdir / f"{variant}-{name}-gc.json"
    env = {
        **procs.gateway_env(home, DEV_KEY),
        **extra,
        "PYTHONPATH": f"{GC_PROBE}{os.pathsep}{code}",
        "STRATA_BENCH_GC_FILE": str(gc_file),
    }
    if variant == "base" and NO_HIREDIS_BASE[0]:
        env["STRATA_BENCH_NO_HIREDIS"] = "1"
    port = procs.free_port()
    argv = [*procs.strata_argv("direct", config, port), *argv_extra]
    log = workdir / f"{variant}-{name}.log"
    proc = procs.start_gateway(argv, env, log, workdir)
    if not await wait_ready(port, "/readyz", time.monotonic() + 90):
        proc.stop()
        raise RuntimeError(f"{variant} {name} gateway did not start:\n{proc.last_lines(8)}")
    return Gateway(name, variant, proc, port, key, gc_file)


def gc_full(gw: Gateway | None) -> list[float]:
    """Every full (generation 2) collection's pause so far, in ms."""
    if gw is None:
        return []
    for _ in range(3):  # the probe overwrites the file in place: a read may catch it mid-write
        try:
            doc = orjson.loads(gw.gc_file.read_bytes())
        except OSError:
            return []
        except orjson.JSONDecodeError:
            time.sleep(0.01)
            continue
        return [float(ms) for ms in doc.get("full_ms", [])]
    return []


# -- measuring -----------------------------------------------------------------------------------


def _summary(samples: Samples, cpu_s: float | None) -> dict[str, Any]:
    return {
        "ok": samples.ok,
        "errors": samples.errors,
        "first_error": samples.first_error,
        "latency_ms": fig.latency_ms(samples.total),
        "first_byte_ms": fig.latency_ms(samples.first_byte),
        "throughput_rps": samples.throughput,
        "cpu_ms_per_request": (cpu_s * 1000 / samples.served)
        if cpu_s is not None and samples.ok
        else math.nan,
        "answer_problem": check_answer(_surface_of(samples), samples.answer.body)
        if samples.answer is not None
        else "no successful answer",
    }


_SURFACE: dict[int, str] = {}


def _surface_of(samples: Samples) -> str:
    return _SURFACE[id(samples)]


async def measure_once(
    row: Row,
    gw: Gateway | None,
    port: int,
    key: str,
    model: str,
    count: int,
    concurrency: int,
    rate: float | None,
    timeline: str = "",
) -> dict[str, Any]:
    call, distinct = request(row, port, key, model)
    pid = gw.proc.pid if gw is not None else None
    snap = _timeline.snapshot(pid, port) if timeline else None
    before = procs.tree_cpu_seconds(pid) if pid is not None else 0.0
    gc_before = gc_full(gw)
    samples = await run(
        call, count, concurrency, raw_for=distinct, rate_per_s=rate, prime=not NO_PRIME[0]
    )
    cpu = procs.tree_cpu_seconds(pid) - before if pid is not None else None
    gc_after = gc_full(gw)
    if timeline:
        _timeline.write(TIMELINE[0], timeline, samples, snap, _timeline.snapshot(pid, port))
    _SURFACE[id(samples)] = row.surface
    out = _summary(samples, cpu)
    during = gc_after[len(gc_before) :]
    out["gc_full"] = {
        "count": len(during),
        "total_ms": sum(during),
        "max_ms": max(during, default=0.0),
    }
    return out


async def warm(row: Row, gw: Gateway | None, port: int, key: str, model: str, n: int) -> None:
    call, distinct = request(row, port, key, model)
    samples = await run(call, n, min(n, 32), raw_for=distinct)
    _SURFACE[id(samples)] = row.surface
    if samples.errors or samples.answer is None:
        raise RuntimeError(
            f"{row.name}: {samples.errors} errors while warming: {samples.first_error}"
        )
    problem = check_answer(row.surface, samples.answer.body)
    if problem:
        raise RuntimeError(f"{row.name}: wrong answer while warming: {problem}")


# -- the run -------------------------------------------------------------------------------------


def make_key(pg_url: str, workdir: Path) -> str:
    from gateway.accounting.keys import KeyAdmin
    from gateway.accounting.store import Database

    db = Database(pg_url, workdir / "keys")
    db.migrate()
    from decimal import Decimal

    secret, _ = KeyAdmin(db).create(
        "bench", models=["default"], rpm=10_000_000, tpm=1_000_000_000, budget_usd=Decimal(10**6)
    )
    db.close()
    return secret


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = procs.make_workdir()
    schema, prefix, pg_url = make_run_stores("strata_sat_")
    args.redis_prefix = prefix
    started: list[procs.Proc] = []
    variants = [("new", procs.REPO)]
    if args.baseline is not None:
        variants.insert(0, ("base", args.baseline.resolve()))
    report: dict[str, Any] = {"loadavg_before": procs.loadavg(), "cpus": os.cpu_count()}
    try:
        fake, fake_port = procs.start_fake(workdir, latency_ms=0.0, chunks=8)
        cold, cold_port = procs.start_fake(workdir, latency_ms=args.cold_latency_ms, chunks=8)
        started += [fake, cold]
        key = make_key(pg_url, workdir)
        stage_env = {
            "STRATA_DATABASE_URL": pg_url,
            "STRATA_REDIS_URL": REDIS_URL,
            "STRATA_REDIS_PREFIX": prefix,
        }
        kinds = {
            "plain": (fake_port, False, {}, DEV_KEY),
            "stages": (fake_port, True, stage_env, key),
            "plain-cold": (cold_port, False, {}, DEV_KEY),
            "stages-cold": (cold_port, True, stage_env, key),
        }
        gateways: dict[tuple[str, str], Gateway] = {}
        for variant, code in variants:
            for name, (port, cache, extra, auth) in kinds.items():
                config = write_config(workdir, f"{variant}-{name}", port, cache)
                gw = await start_gateway(name, variant, code, workdir, config, auth, extra)
                started.append(gw.proc)
                gateways[(variant, name)] = gw
        results: list[Measured] = []
        rows = [r for r in ROWS if not args.only or any(o in r.name for o in args.only)]
        for row in rows:
            for _ in range(args.rounds):
                for variant, _code in variants if row.gateway else variants[:1]:
                    results.append(
                        await measure_row(row, variant, gateways, fake_port, cold_port, args)
                    )
                    print(line(results[-1], args.concurrency), flush=True)
        report["workers"] = await measure_workers(args, workdir, fake_port, gateways, started)
        report["results"] = [vars(m) for m in results]
        report["loadavg_after"] = procs.loadavg()
        report["rss_mib"] = {
            f"{v} {n}": procs.rss_mib(gw.proc.pid) for (v, n), gw in gateways.items()
        }
        return report
    finally:
        for proc in reversed(started):
            proc.stop()
        drop_run_stores(schema, prefix)
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"workdir kept: {workdir}", file=sys.stderr)


async def measure_row(
    row: Row,
    variant: str,
    gateways: dict[tuple[str, str], Gateway],
    fake_port: int,
    cold_port: int,
    args: argparse.Namespace,
) -> Measured:
    gw = gateways[(variant, row.gateway)] if row.gateway else None
    if gw is None:
        port, key, model = (cold_port if row.cold else fake_port), "unchecked", MODEL_ID
    else:
        port, key, model = gw.port, gw.key, "default"
    out = Measured(row.name, variant if gw else "-", procs.loadavg())
    await warm(row, gw, port, key, model, args.warmup)
    if row.cold:
        out.runs["cold"] = await measure_once(
            row, gw, port, key, model, args.cold_requests, 1, args.cold_rate
        )
        return out
    out.runs["seq"] = await measure_once(row, gw, port, key, model, args.seq_requests, 1, None)
    label = f"{next(_RUN):03d} {row.name} {out.variant}" if TIMELINE else ""
    out.runs[f"c{args.concurrency}"] = await measure_once(
        row, gw, port, key, model, args.requests, args.concurrency, None, label
    )
    return out


async def measure_workers(
    args: argparse.Namespace,
    workdir: Path,
    fake_port: int,
    gateways: dict[tuple[str, str], Gateway],
    started: list[procs.Proc],
) -> dict[str, Any]:
    if not args.workers:
        return {"skipped": "no --workers given"}
    if not has_workers_option(procs.REPO):
        return {
            "skipped": "strata serve has no --workers option on this tree (it comes from "
            "branch issue-17w); rerun with --workers N once it is merged"
        }
    config = write_config(workdir, "workers", fake_port, False)
    name = f"workers-{args.workers}"
    # Several workers refuse to start without Redis (limits would be per process); the dev
    # key has none, so Redis is only there to satisfy that check.
    shared = {"STRATA_REDIS_URL": REDIS_URL, "STRATA_REDIS_PREFIX": args.redis_prefix}
    gw = await start_gateway(
        name, "new", procs.REPO, workdir, config, DEV_KEY, shared, ["--workers", str(args.workers)]
    )
    started.append(gw.proc)
    row = Row(f"plain converse, {args.workers} workers", name, "converse")
    one = gateways[("new", "plain")]
    out: dict[str, Any] = {}
    for label, target in (("1 worker", one), (name, gw)):
        await warm(row, target, target.port, DEV_KEY, "default", args.warmup)
        out[label] = await measure_once(
            row, target, target.port, DEV_KEY, "default", args.requests, args.concurrency, None
        )
    out["ratio"] = out[name]["throughput_rps"] / max(out["1 worker"]["throughput_rps"], 1e-9)
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.saturation", description=__doc__.split("\n")[0]
    )
    p.add_argument("--requests", type=int, default=2000, help="requests per saturated run")
    p.add_argument("--seq-requests", type=int, default=300, help="requests per sequential run")
    p.add_argument("--cold-requests", type=int, default=200, help="requests per cold run")
    p.add_argument("--cold-rate", type=float, default=20.0, help="requests/s on the cold path")
    p.add_argument("--cold-latency-ms", type=float, default=50.0)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rounds", type=int, default=1, help="repeats of each row per variant")
    p.add_argument("--baseline", type=Path, default=None, help="another source tree, interleaved")
    p.add_argument(
        "--baseline-without-hiredis",
        action="store_true",
        help="run the baseline's redis-py without hiredis (a commit from before it was added)",
    )
    p.add_argument("--workers", type=int, default=0, help="also measure strata serve --workers N")
    p.add_argument("--only", action="append", default=[], help="rows whose name contains this")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--keep-workdir", action="store_true")
    p.add_argument(
        "--timeline",
        type=Path,
        default=None,
        help="write each saturated run's per-request start/duration and TCP counters here",
    )
    p.add_argument(
        "--no-prime",
        action="store_true",
        help="time each connection's first request too (bench/_load.py _prime says why not)",
    )
    args = p.parse_args(argv)
    if min(args.requests, args.seq_requests, args.cold_requests, args.warmup, args.rounds) < 1:
        p.error("counts must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    NO_HIREDIS_BASE[0] = args.baseline_without_hiredis
    if args.timeline is not None:
        TIMELINE.append(args.timeline)
    NO_PRIME[0] = args.no_prime
    print(HEAD.replace("cN", f"c{args.concurrency}"), flush=True)
    try:
        report = run_client(bench(args))
    except RuntimeError as exc:
        print(f"bench.saturation: {exc}", file=sys.stderr)
        return 2
    print(render_workers(report["workers"]))
    print(
        f"load average {report['loadavg_before']} -> {report['loadavg_after']}, "
        f"{report['cpus']} CPUs; RSS after the run (MiB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in report["rss_mib"].items())
    )
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    bad = [
        m
        for m in report["results"]
        for r in m["runs"].values()
        if r["errors"] or r["answer_problem"]
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
