"""Saturated throughput of ``strata serve --workers 1`` against ``--workers 2``, and what limits it.

    python -m bench.workers [--requests 6000] [--concurrency 32,64] [--rounds 2] [--json out.json]
                            [--gateway-cpus 0,1 --client-cpus 2,3]

One run starts the Bedrock-wire fake with a 0 ms upstream and, in turn, a one-worker and a
two-worker gateway in front of it (rounds alternate 1, 2, 1, 2 so a drift in the machine's load
hits both alike), and sends non-streamed OpenAI calls over ``concurrency`` keep-alive
connections as fast as they are answered. For each run it prints requests/s, p50/p99, and the
CPU each party spent per request from /proc: the gateway (supervisor and workers), each worker
(how evenly the kernel spread the connections), the fake and this process, which is the load
generator. The ratio 2 workers / 1 worker is acceptance 3 of issue 17 (>= 1.6x).

The load generator and the fake share the machine with the gateway, so the run also prints the
ceiling the box allows: ``cores / (all CPU per request)``. On two cores two workers cannot get
two cores while the client and the fake need some too; ``--gateway-cpus`` / ``--client-cpus``
pin the gateway tree and the fake plus this client to separate cores (``sched_setaffinity``) on
a bigger machine, which is the measurement acceptance 3 means. ``--cache-hits`` answers every
call from each worker's own memory cache instead, so the fake drops out and only the client
shares the cores with the workers. ``uptime``'s load is printed before and after: on a shared
machine the figures are upper bounds of the cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import _procs as procs
from bench._load import Call, Samples, run, run_client, wait_ready
from bench._scenarios import MODEL_ID, check_answer, openai_body

KEY = "sk-strata-bench-0123456789abcdef"
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Figures:
    workers: int
    concurrency: int
    round: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    gateway_ms: float  # CPU per request, supervisor + workers
    worker_ms: list[float]  # CPU per request (of all requests) spent by each worker
    fake_ms: float
    client_ms: float
    cores_busy: float  # all three parties' CPU over the wall time


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def _cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = procs.cpu_seconds(pid)
        except OSError:
            continue
    return out


def _pin(pids: list[int], cpus: set[int] | None) -> None:
    if cpus:
        for pid in pids:
            os.sched_setaffinity(pid, cpus)


async def measure(
    call: Call, gateway: procs.Proc, fake: procs.Proc, workers: int, conc: int, args: Any, rnd: int
) -> Figures:
    tree = procs.descendants(gateway.pid)
    before = _cpu([*tree, fake.pid])
    client0 = time.process_time()
    samples: Samples = await run(call, args.requests, conc)
    client = time.process_time() - client0
    after = _cpu([*tree, fake.pid])
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    n = max(samples.served, 1)
    if samples.answer is not None and (why := check_answer("openai", samples.answer.body)):
        raise RuntimeError(why)
    gateway_s = sum(v for pid, v in spent.items() if pid != fake.pid)
    worker_pids = [p for p in tree if p != gateway.pid] if workers > 1 else [gateway.pid]
    total = gateway_s + spent.get(fake.pid, 0.0) + client
    return Figures(
        workers=workers,
        concurrency=conc,
        round=rnd,
        requests=samples.ok,
        errors=samples.errors,
        rps=samples.throughput,
        p50_ms=_quantile(samples.total, 0.5),
        p99_ms=_quantile(samples.total, 0.99),
        gateway_ms=gateway_s / n * 1000,
        worker_ms=[spent.get(p, 0.0) / n * 1000 for p in worker_pids],
        fake_ms=spent.get(fake.pid, 0.0) / n * 1000,
        client_ms=client / n * 1000,
        cores_busy=total / samples.wall_s if samples.wall_s else 0.0,
    )


async def start_gateway(
    workdir: Path, config: Path, workers: int, args: Any
) -> tuple[procs.Proc, int]:
    home = workdir / f"home-{workers}-{secrets.token_hex(3)}"
    home.mkdir()
    env = procs.gateway_env(home, KEY)
    # Several workers need Redis (shared limits); both sides get it, so they differ only in N.
    env.update(
        STRATA_REDIS_URL=REDIS_URL,
        STRATA_REDIS_PREFIX=f"strata-bench:{secrets.token_hex(4)}:",
        STRATA_LOG_LEVEL="WARNING",
    )
    port = procs.free_port()
    argv = [*procs.strata_argv("direct", config, port), "--workers", str(workers)]
    proc = procs.start_gateway(argv, env, workdir / f"gateway-{workers}.log", workdir)
    if not await wait_ready(port, "/readyz", time.monotonic() + 120):
        proc.stop()
        raise RuntimeError(f"the {workers}-worker gateway did not start:\n{proc.last_lines(8)}")
    while workers > 1 and len(procs.descendants(proc.pid)) < workers + 1:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    _pin(procs.descendants(proc.pid), args.gateway_cpus)
    return proc, port


async def bench(args: Any) -> dict[str, Any]:
    workdir = procs.make_workdir()
    load_before = procs.loadavg()
    pinned = (args.gateway_cpus or set()) | (args.client_cpus or set())
    cores = len(pinned) if pinned else len(os.sched_getaffinity(0))
    fake, fake_port = procs.start_fake(workdir, latency_ms=0, chunks=4)
    _pin([fake.pid], args.client_cpus)
    if args.client_cpus:
        os.sched_setaffinity(0, args.client_cpus)
    config = workdir / "strata.yaml"
    alias = f"bedrock:{MODEL_ID}"
    if args.cache_hits:  # every call answered from each worker's own memory cache
        alias = f"\n    targets: [bedrock:{MODEL_ID}]\n    cache: {{ttl_s: 3600}}"
    config.write_text(
        f"aliases:\n  default: {alias}\n"
        f"bedrock:\n  region: us-east-1\n  endpoint_url: http://127.0.0.1:{fake_port}\n",
        encoding="utf-8",
    )
    runs: list[Figures] = []
    try:
        for rnd in range(args.rounds):
            for workers in (1, 2):
                gateway, port = await start_gateway(workdir, config, workers, args)
                try:
                    body = openai_body("default", False)
                    if args.cache_hits:  # the cache answers only calls at temperature 0
                        body = orjson.dumps({**orjson.loads(body), "temperature": 0})
                    headers = {"Authorization": f"Bearer {KEY}"}
                    call = Call.post("openai", port, "/v1/chat/completions", body, headers)
                    await run(call, args.warmup, max(args.concurrency))
                    for conc in args.concurrency:
                        figures = await measure(call, gateway, fake, workers, conc, args, rnd)
                        runs.append(figures)
                        print(_row(figures), flush=True)
                finally:
                    gateway.stop()
    finally:
        fake.stop()
    return {
        "load_before": load_before,
        "load_after": procs.loadavg(),
        "cores": cores,
        "pinned": {
            "gateway": sorted(args.gateway_cpus or []),
            "client": sorted(args.client_cpus or []),
        },
        "runs": [asdict(r) for r in runs],
    }


def _row(f: Figures) -> str:
    share = "/".join(f"{w:.2f}" for w in f.worker_ms)
    return (
        f"workers {f.workers}  c={f.concurrency:<3} round {f.round}  {f.rps:7.0f} req/s  "
        f"p50 {f.p50_ms:5.1f} ms  p99 {f.p99_ms:6.1f} ms  CPU/req: gateway {f.gateway_ms:.3f} ms "
        f"(workers {share})  fake {f.fake_ms:.3f}  client {f.client_ms:.3f}  "
        f"cores busy {f.cores_busy:.2f}  errors {f.errors}"
    )


def _best(runs: list[dict[str, Any]], workers: int, conc: int) -> dict[str, Any]:
    mine = [r for r in runs if r["workers"] == workers and r["concurrency"] == conc]
    return max(mine, key=lambda r: r["rps"])


def _all(run: dict[str, Any]) -> float:
    return float(run["gateway_ms"] + run["fake_ms"] + run["client_ms"])


def _ceiling_ratio(one: dict[str, Any], two: dict[str, Any], cores: int) -> float:
    """Throughput bounds from CPU alone: one worker runs on at most one core, two on two, and
    all three parties together on at most ``cores``."""
    t1 = min(1 / one["gateway_ms"], cores / _all(one)) if one["gateway_ms"] else 0.0
    # Each worker on at most one core: the busier one (uneven connections) sets the bound.
    busiest = max([*two["worker_ms"], 1e-9])
    t2 = min(1 / busiest, cores / _all(two)) if _all(two) else 0.0
    return t2 / t1 if t1 else 0.0


def render(report: dict[str, Any], concurrency: list[int]) -> str:
    cores = report["cores"]
    lines = [
        "",
        f"load average before {report['load_before']}, after {report['load_after']}; "
        f"{cores} cores; pinned {report['pinned']}",
    ]
    for conc in concurrency:
        one, two = _best(report["runs"], 1, conc), _best(report["runs"], 2, conc)
        ratio = two["rps"] / one["rps"] if one["rps"] else 0.0
        all_cpu = _all(two)
        ceiling = cores / all_cpu * 1000 if all_cpu else 0.0
        one_core = 1000 / one["gateway_ms"] if one["gateway_ms"] else 0.0
        lines += [
            f"c={conc}: 2 workers / 1 worker = {two['rps']:.0f} / {one['rps']:.0f} req/s = "
            f"{ratio:.2f}x (acceptance 3: >= 1.6x) [best round of each]",
            f"  CPU per request with 2 workers: gateway {two['gateway_ms']:.3f} ms + fake "
            f"{two['fake_ms']:.3f} ms + load generator {two['client_ms']:.3f} ms = "
            f"{all_cpu:.3f} ms",
            f"  ceiling of this box for all three together: {cores} cores / {all_cpu:.3f} ms = "
            f"{ceiling:.0f} req/s; one worker on one full core: {one_core:.0f} req/s; "
            f"cores busy: 1 worker {one['cores_busy']:.2f}, 2 workers {two['cores_busy']:.2f}",
            f"  best ratio this box allows with these CPU costs: "
            f"{_ceiling_ratio(one, two, cores):.2f}x (1 worker: one core or the box; "
            "2 workers: two cores or the box)",
            # Throughput is cores used / CPU per request, so the ratio splits into the two.
            f"  ratio = cores-busy ratio {two['cores_busy'] / max(one['cores_busy'], 1e-9):.2f} "
            f"x CPU-per-request ratio {_all(one) / max(_all(two), 1e-9):.2f}",
        ]
        if one["cores_busy"] < 0.9:
            lines.append(
                "  the 1-worker run used less than one core in all: the machine's other load, "
                "not the gateway, set the pace (see the load average); rerun on a quiet machine"
            )
    return "\n".join(lines)


def _cpus(text: str | None) -> set[int] | None:
    if not text:
        return None
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--requests", type=int, default=6000, help="requests per measurement")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--concurrency", default="32,64", help="comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="1-then-2-worker rounds")
    parser.add_argument("--gateway-cpus", type=_cpus, default=None, help="e.g. 0,1")
    parser.add_argument("--client-cpus", type=_cpus, default=None, help="fake + client, e.g. 2-5")
    parser.add_argument(
        "--cache-hits",
        action="store_true",
        help="answer every call from the response cache: the fake then costs nothing, so the "
        "run shows how the gateway alone scales on cores it shares only with the client",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run_client(bench(args))
    except RuntimeError as exc:
        print(f"bench.workers: {exc}", file=sys.stderr)
        return 2
    print(render(report, args.concurrency), flush=True)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    errors = sum(r["errors"] for r in report["runs"])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
