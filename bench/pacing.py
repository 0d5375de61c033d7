"""CPU per request against the arrival rate: is the cold path the gateway's, or the machine's?

    python -m bench.pacing [--rates 0,200,50,20,10] [--requests 150]

At 20 requests/s the gateway spends about 2.5-3x the CPU per request it spends when requests
follow one another (``bench.saturation``'s cold rows), though it runs the same code. This bench
paces one request shape at several rates, one at a time (rate 0: back to back), and reads the
CPU of two processes per request, in nanoseconds from ``/proc/<pid>/task/*/schedstat``:

- the **gateway** (``strata serve``, bench.saturation's plain config) in front of the fake;
- the **control**: the Bedrock-wire fake itself, a much smaller Python asyncio server, once
  behind the gateway and once called directly at the same rates.

If the control's CPU per request rises with the spacing as the gateway's does, the rise is the
machine's (a process that sleeps between requests comes back to cold caches and a slower core),
not work the gateway does between requests. Each figure is also shown as a ratio to the same
process's back-to-back figure.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from typing import Any

from bench import _procs as procs
from bench._load import run
from bench._saturation_rows import ROWS, request
from bench._scenarios import MODEL_ID
from bench.saturation import DEV_KEY

ROW = next(r for r in ROWS if r.name == "plain converse")


def cpu_ns(pid: int) -> int:
    """On-CPU nanoseconds of every thread of ``pid`` and its descendants (schedstat's first
    field: finer than the clock ticks of ``/proc/<pid>/stat``)."""
    total = 0
    for task in procs.tree_tasks(pid):
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


async def paced(
    port: int, key: str, model: str, count: int, rate: float, pids: list[int]
) -> dict[str, Any]:
    call, _ = request(ROW, port, key, model)
    before = [cpu_ns(p) for p in pids]
    samples = await run(call, count, 1, rate_per_s=rate or None)
    after = [cpu_ns(p) for p in pids]
    if samples.errors:
        raise RuntimeError(f"{samples.errors} errors at {rate}/s: {samples.first_error}")
    return {
        "rate": rate,
        "cpu_ms": [(a - b) / 1e6 / samples.served for a, b in zip(after, before, strict=True)],
        "p50_ms": sorted(samples.total)[len(samples.total) // 2] * 1e3,
    }


def report(title: str, names: list[str], rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    head = f"{'rate/s':>8} {'p50 ms':>7} " + " ".join(f"{n + ' ms':>14} {'x':>5}" for n in names)
    print(head)
    base = rows[0]["cpu_ms"]
    for r in rows:
        rate = "b2b" if not r["rate"] else f"{r['rate']:g}"
        cells = " ".join(
            f"{c:>14.3f} {c / b:>5.2f}" for c, b in zip(r["cpu_ms"], base, strict=True)
        )
        print(f"{rate:>8} {r['p50_ms']:>7.2f} {cells}")


async def main(args: argparse.Namespace) -> None:
    rates = [float(r) for r in args.rates.split(",")]
    if rates[0] != 0:
        raise SystemExit("--rates must start with 0 (back to back), the ratios' reference")
    workdir = procs.make_workdir()
    started: list[procs.Proc] = []
    try:
        fake, fake_port = procs.start_fake(workdir, latency_ms=0, chunks=8)
        started.append(fake)
        config = procs.write_gateway_config(
            workdir, fake_port, "anthropic.claude-3-haiku-20240307-v1:0"
        )
        gw, gw_port = await procs.start_ready("pacing", workdir, config, DEV_KEY, {})
        started.append(gw)
        through, direct = [], []
        for rate in rates:
            await paced(gw_port, DEV_KEY, "default", 50, 0, [gw.pid])  # warm, not counted
            through.append(
                await paced(gw_port, DEV_KEY, "default", args.requests, rate, [gw.pid, fake.pid])
            )
            direct.append(
                await paced(fake_port, "unchecked", MODEL_ID, args.requests, rate, [fake.pid])
            )
        print(f"load average {procs.loadavg()}; {args.requests} requests per rate, one at a time")
        report(
            "through the gateway (CPU per request of each process)", ["gateway", "fake"], through
        )
        report("the fake called directly (the control)", ["fake"], direct)
    finally:
        for proc in reversed(started):
            proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def cli() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.pacing", description=__doc__.split("\n")[0])
    p.add_argument("--rates", default="0,200,50,20,10", help="requests/s, 0 = back to back")
    p.add_argument("--requests", type=int, default=150, help="requests per rate and process")
    args = p.parse_args()
    if args.requests < 10:
        raise SystemExit("--requests must be at least 10")
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
