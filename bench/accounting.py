"""What accounting costs: the gateway with keys + Redis limits + budget + PostgreSQL ledger on,
against the plain path, in one run; and how many ledger records per second the writer commits.

    python -m bench.accounting [--requests 2000] [--seq-requests 500] [--concurrency 32]
                               [--ledger-records 20000] [--json out.json]

Two ``strata serve`` processes over the same Bedrock-wire fake, measured one after the other:

- **plain**: the dev key (admin, no limits): no Redis, no budget, the embedded SQLite ledger;
- **accounted**: a database key scoped to the alias, with RPM, TPM and a USD budget, Redis for
  limits and budget counters (the machine's, under a private key prefix) and the ledger in a
  PostgreSQL schema made for the run and dropped after.

For each: CPU per request of the gateway process (``/proc`` utime+stime over the run),
sequential p50/p95, throughput at ``--concurrency``; the difference is what accounting adds.
Then the ledger alone: ``--ledger-records`` records handed to ``Ledger.record`` as fast as one
thread can, timed until all are committed, for PostgreSQL and SQLite. Load averages are printed
with the figures: the machine is shared, so they say how much to trust them.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from bench import _figures as fig
from bench import _procs as procs
from bench._load import run
from bench._scenarios import MODEL_ID, Scenario, check_answer, converse_scenarios, openai_scenarios
from bench._stores import drop_run_stores

DEV_KEY = "sk-strata-bench-0123456789abcdef"
PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def start(
    name: str, workdir: Path, fake_port: int, extra: dict[str, str]
) -> tuple[procs.Proc, int]:
    config = procs.write_gateway_config(workdir, fake_port, MODEL_ID)
    return await procs.start_ready(name, workdir, config, DEV_KEY, extra)


async def measure(proc: procs.Proc, scenarios: list[Scenario], args: argparse.Namespace) -> dict:
    out: dict[str, Any] = {}
    for scenario in scenarios:
        warm = await run(scenario.call, args.warmup, args.concurrency)
        if warm.answer is None or check_answer(scenario.surface, warm.answer.body):
            raise RuntimeError(f"{scenario.name}: wrong answer while warming: {warm.first_error}")
        row: dict[str, Any] = {}
        for label, count, conc in (
            ("seq", args.seq_requests, 1),
            (f"c{args.concurrency}", args.requests, args.concurrency),
        ):
            before = procs.tree_cpu_seconds(proc.pid)
            samples = await run(scenario.call, count, conc)
            cpu = procs.tree_cpu_seconds(proc.pid) - before
            row[label] = {
                "ok": samples.ok,
                "errors": samples.errors,
                "first_error": samples.first_error,
                "latency_ms": fig.latency_ms(samples.total),
                "throughput_rps": samples.throughput,
                "cpu_ms_per_request": cpu * 1000 / samples.served if samples.ok else math.nan,
            }
        out[scenario.surface] = row
    return out


def make_key(pg_url: str, workdir: Path) -> str:
    from gateway.accounting.keys import KeyAdmin
    from gateway.accounting.store import Database

    db = Database(pg_url, workdir / "keys")
    db.migrate()
    secret, _ = KeyAdmin(db).create(
        "bench",
        models=["default"],
        rpm=10_000_000,
        tpm=1_000_000_000,
        budget_usd=Decimal(1_000_000),
    )
    db.close()
    return secret


def ledger_rate(url: str | None, workdir: Path, records: int) -> dict[str, float]:
    from gateway.accounting.ledger import Ledger, LedgerRecord
    from gateway.accounting.store import Database

    home = workdir / f"ledger-{'pg' if url else 'sqlite'}"
    db = Database(url, home)
    db.migrate()
    ledger = Ledger(db, home)
    ledger.start()
    now = time.time()
    started = time.perf_counter()
    tag = secrets.token_hex(4)
    for i in range(records):
        ledger.record(
            LedgerRecord(
                f"bench-{tag}-{i}",
                now,
                "bench",
                "key_bench",
                "openai",
                "default",
                None,
                None,
                f"bedrock:{MODEL_ID}",
                "us-east-1",
                200,
                None,
                1,
                False,
                False,
                120,
                40,
                0,
                0,
                80_000_000,
                "token",
                0,
                2.5,
                1.5,
                None,
            )
        )
    handed = time.perf_counter() - started
    if not ledger.flush(timeout_s=300):
        raise RuntimeError("the ledger did not write every record in time")
    total = time.perf_counter() - started
    ledger.close()
    count = db.query("SELECT COUNT(*) FROM ledger WHERE request_id LIKE ?", (f"bench-{tag}-%",))
    db.close()
    if int(count[0][0]) != records:
        raise RuntimeError(f"ledger has {count[0][0]} of {records} records")
    return {
        "records": records,
        "record_us_each": handed / records * 1e6,
        "committed_per_s": records / total,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    workdir = procs.make_workdir()
    schema = "strata_bench_" + secrets.token_hex(4)
    prefix = f"strata-bench:{secrets.token_hex(4)}:"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    pg_url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    started: list[procs.Proc] = []
    load = {"before": procs.loadavg()}
    try:
        fake, fake_port = procs.start_fake(workdir, latency_ms=args.latency_ms, chunks=8)
        started.append(fake)
        key = make_key(pg_url, workdir)
        results: dict[str, Any] = {}
        for name, extra, auth in (
            ("plain", {}, DEV_KEY),
            (
                "accounted",
                {
                    "STRATA_DATABASE_URL": pg_url,
                    "STRATA_REDIS_URL": REDIS_URL,
                    "STRATA_REDIS_PREFIX": prefix,
                },
                key,
            ),
        ):
            proc, port = await start(name, workdir, fake_port, extra)
            started.append(proc)
            scenarios = [
                *openai_scenarios(name, port, auth, "default")[:1],
                *converse_scenarios(name, port, auth, "default")[:1],
            ]
            results[name] = await measure(proc, scenarios, args)
            proc.stop()
            started.remove(proc)
        load["after_gateways"] = procs.loadavg()
        ledger = {
            "postgres": ledger_rate(pg_url, workdir, args.ledger_records),
            "sqlite": ledger_rate(None, workdir, args.ledger_records),
        }
        load["after"] = procs.loadavg()
        return {"gateways": results, "ledger": ledger, "loadavg": load, "cpus": os.cpu_count()}
    finally:
        for proc in reversed(started):
            proc.stop()
        drop_run_stores(schema, prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def render(report: dict[str, Any], concurrency: int) -> str:
    lines = [f"load average {report['loadavg']} on {report['cpus']} CPUs", ""]
    head = (
        f"{'surface':<10} {'path':<10} {'cpu seq':>8} {f'cpu c{concurrency}':>8} "
        f"{'seq p50 ms':>10} {'seq p95 ms':>10} {f'rps c{concurrency}':>9} {'errors':>7}"
    )
    lines.append(head)
    g = report["gateways"]
    for surface in g["plain"]:
        for path in ("plain", "accounted"):
            seq, conc = g[path][surface]["seq"], g[path][surface][f"c{concurrency}"]
            lines.append(
                f"{surface:<10} {path:<10} {seq['cpu_ms_per_request']:>8.3f} "
                f"{conc['cpu_ms_per_request']:>8.3f} {seq['latency_ms']['p50']:>10.3f} "
                f"{seq['latency_ms']['p95']:>10.3f} {conc['throughput_rps']:>9.0f} "
                f"{seq['errors'] + conc['errors']:>7}"
            )
        added_cpu = (
            g["accounted"][surface][f"c{concurrency}"]["cpu_ms_per_request"]
            - g["plain"][surface][f"c{concurrency}"]["cpu_ms_per_request"]
        )
        added_p50 = (
            g["accounted"][surface]["seq"]["latency_ms"]["p50"]
            - g["plain"][surface]["seq"]["latency_ms"]["p50"]
        )
        added_seq_cpu = (
            g["accounted"][surface]["seq"]["cpu_ms_per_request"]
            - g["plain"][surface]["seq"]["cpu_ms_per_request"]
        )
        lines.append(
            f"{surface:<10} {'added':<10} {added_seq_cpu:>8.3f} {added_cpu:>8.3f} "
            f"{added_p50:>10.3f}"
            f"   (target: accounting CPU <= 1 ms per request: "
            f"{'met' if added_cpu <= 1.0 else 'MISSED'})"
        )
    lines.append("")
    for name, row in report["ledger"].items():
        lines.append(
            f"ledger {name:<9} {row['committed_per_s']:>9.0f} records/s committed "
            f"({row['records']} records; record() {row['record_us_each']:.1f} us each)"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.accounting", description=__doc__.split("\n")[0]
    )
    p.add_argument("--requests", type=int, default=2000, help="requests per concurrent run")
    p.add_argument("--seq-requests", type=int, default=500, help="requests per sequential run")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--latency-ms", type=float, default=0.0, help="the fake's latency per call")
    p.add_argument("--ledger-records", type=int, default=20000)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if min(args.requests, args.seq_requests, args.concurrency, args.ledger_records) < 1:
        p.error("counts must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = asyncio.run(bench(args))
    except RuntimeError as exc:
        print(f"bench.accounting: {exc}", file=sys.stderr)
        return 2
    print(render(report, args.concurrency), flush=True)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    errors = sum(r[k]["errors"] for g in report["gateways"].values() for r in g.values() for k in r)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
