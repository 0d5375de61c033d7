"""What an idle gateway costs: CPU and wake-ups per second while no request comes.

    python -m bench.idle [--seconds 10] [--baseline DIR] [--only default,plain,stages]

It starts one ``strata serve`` per set-up, sends it a few requests (so that lazy connections
and pools exist), lets it settle, then reads ``/proc`` over ``--seconds`` of silence:

- **default**: ``strata serve`` with no config (the embedded local model, the SQLite ledger);
- **plain**: the Bedrock-wire fake behind the default alias (``bench.saturation``'s plain);
- **stages**: the same with a database key, Redis limits and budget counters, the PostgreSQL
  ledger in a schema made for the run, and ``cache:`` on the alias.

Per set-up: CPU ms per second of the process tree, and per thread name its CPU and its
voluntary context switches per second (each one a wake-up from a sleep: a poller's timer, a
writer's wait). ``--baseline DIR`` measures another tree the same way, alternated.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from bench import _procs as procs
from bench._load import run, wait_ready
from bench._saturation_rows import ROWS, request
from bench._stores import REDIS_URL, drop_run_stores, make_run_stores
from bench.saturation import DEV_KEY, make_key, write_config

SETUPS = ("default", "plain", "stages")


def threads(pid: int) -> dict[str, tuple[float, int]]:
    """Per thread (``comm/tid``) across the process tree: (CPU seconds, voluntary context
    switches)."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for task in procs.tree_tasks(pid):
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
        except OSError:
            continue
        name = f"{stat[stat.index('(') + 1 : stat.rindex(')')]}/{task.name}"
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) * procs._TICK_S
        switches = next(
            int(line.split()[1])
            for line in status.splitlines()
            if line.startswith("voluntary_ctxt_switches")
        )
        entry = out[name]
        entry[0] += cpu
        entry[1] += switches
    return {k: (v[0], int(v[1])) for k, v in out.items()}


async def measure(pid: int, seconds: float) -> dict[str, object]:
    before, t0 = threads(pid), time.monotonic()
    cpu0 = procs.tree_cpu_seconds(pid)
    await asyncio.sleep(seconds)
    cpu1, after, elapsed = procs.tree_cpu_seconds(pid), threads(pid), time.monotonic() - t0
    per_thread = {}
    for name, (cpu, sw) in after.items():
        c0, s0 = before.get(name, (0.0, 0))
        per_thread[name] = ((cpu - c0) * 1000 / elapsed, (sw - s0) / elapsed)
    return {
        "cpu_ms_per_s": (cpu1 - cpu0) * 1000 / elapsed,
        "wakeups_per_s": sum(w for _, w in per_thread.values()),
        "threads": per_thread,
        "load": procs.loadavg(),
    }


async def main(args: argparse.Namespace) -> None:
    workdir = procs.make_workdir()
    schema, prefix, pg_url = make_run_stores("strata_idle_")
    variants = [("new", procs.REPO)]
    if args.baseline is not None:
        variants.insert(0, ("base", args.baseline.resolve()))
    started: list[procs.Proc] = []
    try:
        fake, fake_port = procs.start_fake(workdir, latency_ms=0.0, chunks=8)
        started.append(fake)
        key = make_key(pg_url, workdir)
        stage_env = {
            "STRATA_DATABASE_URL": pg_url,
            "STRATA_REDIS_URL": REDIS_URL,
            "STRATA_REDIS_PREFIX": prefix,
        }
        row = {r.name: r for r in ROWS}
        for _ in range(args.rounds):
            for setup in args.only:
                for variant, code in variants:
                    name = f"{variant}-{setup}-{secrets.token_hex(2)}"
                    home = workdir / f"{name}-home"
                    home.mkdir()
                    env = {**procs.gateway_env(home, DEV_KEY), "PYTHONPATH": str(code)}
                    auth = DEV_KEY
                    argv = procs.strata_argv("direct", Path("unused"), procs.free_port())
                    port = int(argv[argv.index("--port") + 1])
                    if setup == "default":
                        at = argv.index("--config")
                        del argv[at : at + 2]
                    else:
                        config = write_config(workdir, name, fake_port, setup == "stages")
                        argv[argv.index("--config") + 1] = str(config)
                    if setup == "stages":
                        env.update(stage_env)
                        auth = key
                    proc = procs.start_gateway(argv, env, workdir / f"{name}.log", code)
                    started.append(proc)
                    if not await wait_ready(port, "/readyz", time.monotonic() + 180):
                        raise RuntimeError(f"{name} did not start:\n{proc.last_lines(8)}")
                    if setup != "default":
                        which = "stages converse miss" if setup == "stages" else "plain converse"
                        call, distinct = request(row[which], port, auth, "default")
                        await run(call, 20, 1, raw_for=distinct)
                    await asyncio.sleep(args.settle)
                    out = await measure(proc.pid, args.seconds)
                    proc.stop()
                    print(_line(variant, setup, out), flush=True)
    finally:
        for proc in reversed(started):
            proc.stop()
        drop_run_stores(schema, prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def _line(variant: str, setup: str, out: dict[str, object]) -> str:
    per = out["threads"]
    assert isinstance(per, dict)
    busy = sorted(per.items(), key=lambda kv: -kv[1][1])
    detail = ", ".join(f"{n} {c:.1f}ms/{w:.1f}w" for n, (c, w) in busy if w >= 0.05 or c > 0)
    return (
        f"{variant:4} {setup:8} {out['cpu_ms_per_s']:6.2f} ms/s  "
        f"{out['wakeups_per_s']:6.1f} wake-ups/s  load {out['load']}\n      {detail}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=10.0, help="idle seconds measured")
    p.add_argument("--settle", type=float, default=3.0, help="seconds after the warm-up")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--baseline", type=Path, default=None, help="another tree, alternated")
    p.add_argument(
        "--only", type=lambda s: s.split(","), default=list(SETUPS), help="default,plain,stages"
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
