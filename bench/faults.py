"""The gateway under injected faults: success rate, upstream attempts per request and latency.

    python -m bench.faults [--requests 2000] [--concurrency 32] [--json out.json]

One run starts the Bedrock-wire fake with two faults, seeded (``--seed``):
- ``flaky-a`` and ``flaky-b`` answer ThrottlingException to 30 % of calls (``--throttle-rate``),
- ``down`` answers ServiceUnavailableException to every call,
and ``strata serve`` with these aliases (``/model/<alias>/converse``, concurrency 32):

| alias | targets | what it shows |
|---|---|---|
| plain | the healthy model | the baseline, no faults |
| throttled | flaky-a → flaky-b, default retry (3 attempts, budget 0.2) | the budget caps retries |
| throttled-generous | the same, budget 0.6 | more retries, more successes |
| hard-down | down → the healthy model, default breaker | the breaker stops calls to down |

Attempts are counted by the fake (its ``/_stats``) before and after each run. Latency is
client-side, over successful answers. Exit status 1 if a successful answer was wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import _figures as fig
from bench import _procs as procs
from bench._load import Call, fetch, run, run_client, wait_ready
from bench._scenarios import MODEL_ID, check_answer, converse_body

KEY = "sk-strata-bench-faults-0123456789abcdef"
SCENARIOS = ("plain", "throttled", "throttled-generous", "hard-down")


def write_config(workdir: Path, fake_port: int) -> Path:
    path = workdir / "strata.yaml"
    path.write_text(
        f"""aliases:
  default: bedrock:{MODEL_ID}
  plain: bedrock:{MODEL_ID}
  throttled: [bedrock:flaky-a, bedrock:flaky-b]
  throttled-generous:
    targets: [bedrock:flaky-a, bedrock:flaky-b]
    retry: {{budget_ratio: 0.6}}
  hard-down: [bedrock:down, bedrock:{MODEL_ID}]
bedrock:
  region: us-east-1
  endpoint_url: http://127.0.0.1:{fake_port}
""",
        encoding="utf-8",
    )
    return path


async def attempts(fake_port: int) -> int:
    answer = await fetch(Call.get("stats", fake_port, "/_stats"))
    served: int = orjson.loads(answer.body)["served"]
    return served


async def measure(
    alias: str, port: int, fake_port: int, requests: int, conc: int
) -> dict[str, Any]:
    call = Call.post(
        alias, port, f"/model/{alias}/converse", converse_body(), {"Authorization": f"Bearer {KEY}"}
    )
    before = await attempts(fake_port)
    # Not primed: a priming request's own attempts (several, in the fault scenarios) would be
    # counted by the fake with the run's.
    samples = await run(call, requests, conc, prime=False)
    made = await attempts(fake_port) - before
    answered = samples.ok + samples.errors
    return {
        "scenario": alias,
        "requests": requests,
        "ok": samples.ok,
        "errors": samples.errors,
        "first_error": samples.first_error,
        "success_rate": samples.ok / answered if answered else math.nan,
        "attempts": made,
        "attempts_per_request": made / requests,
        "latency_ms": fig.latency_ms(samples.total),
        "throughput_rps": samples.throughput,
        "answer_problem": check_answer("converse", samples.answer.body) if samples.answer else None,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = procs.make_workdir()
    started: list[procs.Proc] = []
    load_before = procs.loadavg()
    try:
        extra = ["--throttle-rate", str(args.throttle_rate), "--seed", str(args.seed)]
        extra += ["--throttle-model", "flaky-a", "--throttle-model", "flaky-b"]
        extra += ["--down-model", "down"]
        fake, fake_port = procs.start_fake(
            workdir, latency_ms=args.latency_ms, chunks=8, extra=extra
        )
        started.append(fake)
        home = workdir / "strata-home"
        home.mkdir()
        port = procs.free_port()
        gateway = procs.start_gateway(
            procs.strata_argv("direct", write_config(workdir, fake_port), port),
            procs.gateway_env(home, KEY),
            workdir / "strata.log",
            cwd=workdir,
        )
        started.append(gateway)
        if not await wait_ready(port, "/readyz", asyncio.get_running_loop().time() + 60):
            raise RuntimeError(f"the gateway did not start:\n{gateway.last_lines(8)}")
        runs = [
            await measure(alias, port, fake_port, args.requests, args.concurrency)
            for alias in SCENARIOS
        ]
        return {
            "meta": {
                "requests": args.requests,
                "concurrency": args.concurrency,
                "throttle_rate": args.throttle_rate,
                "seed": args.seed,
                "fake_latency_ms": args.latency_ms,
                "loadavg_before": load_before,
                "loadavg_after": procs.loadavg(),
            },
            "runs": runs,
            "problems": [
                f"{r['scenario']}: {r['answer_problem']}" for r in runs if r["answer_problem"]
            ],
        }
    finally:
        for proc in reversed(started):
            proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"bench.faults: {meta['requests']} requests per scenario at c{meta['concurrency']}, "
        f"throttling {meta['throttle_rate']:.0%} (seed {meta['seed']}), "
        f"load {meta['loadavg_before']} -> {meta['loadavg_after']}",
        "",
        "| scenario | success | attempts/request | p50 ms | p99 ms | req/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lat = r["latency_ms"]
        lines.append(
            f"| {r['scenario']} | {r['success_rate']:.2%} | {r['attempts_per_request']:.3f} | "
            f"{lat['p50']:.2f} | {lat['p99']:.2f} | {r['throughput_rps']:.0f} |"
        )
    lines += [f"PROBLEM: {p}" for p in report["problems"]]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="requests per scenario")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--throttle-rate", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--latency-ms", type=float, default=0.0, help="the fake's latency per call")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = p.parse_args(argv)
    if min(args.requests, args.concurrency) < 1:
        p.error("counts must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run_client(bench(args))
    except RuntimeError as exc:
        print(f"bench.faults: {exc}", file=sys.stderr)
        return 2
    print(render(report), flush=True)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
