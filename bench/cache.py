"""What the response cache costs and saves: latency of a cache hit (in-process and Redis)
against a miss, an uncached route and the upstream called directly; and single-flight's
upstream calls under a burst of identical requests.

    python -m bench.cache [--requests 300] [--latency-ms 20] [--burst 200] [--json out.json]

Starts the Bedrock-wire fake (``--latency-ms`` per answer) and two ``strata serve`` processes,
one per cache backend (``memory``; ``redis`` on the machine's Redis under a private key prefix,
deleted after). Sequential requests, one client, loopback HTTP; for each path p50 and p99:

- ``floor``: ``GET /v1/models`` (HTTP, auth, no pipeline): the gateway's own floor;
- ``direct``: the fake's Converse called without the gateway;
- ``plain``: an alias without ``cache:`` (the full pipeline and the upstream);
- ``miss``: the cached alias, a new prompt each time (lookup + upstream + store);
- ``hit``: the cached alias, one prompt (no upstream call).

Then ``--burst`` identical requests at once on a new prompt: how many reached the fake.
Load averages are printed with the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import _figures as fig
from bench import _procs as procs

KEY = "sk-strata-bench-0123456789abcdef"
MODEL = "bench-model"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _config(workdir: Path, fake_port: int) -> Path:
    path = workdir / "strata.yaml"
    path.write_text(
        f"aliases:\n  default: bedrock:{MODEL}\n  plain: bedrock:{MODEL}\n"
        f"  chat: {{targets: [bedrock:{MODEL}], cache: {{ttl_s: 600}}}}\n"
        f"bedrock:\n  region: us-east-1\n  endpoint_url: http://127.0.0.1:{fake_port}\n",
        encoding="utf-8",
    )
    return path


def _body(text: str, model: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": text}],
        "temperature": 0,
        "max_tokens": 16,
    }
    return {**body, "model": model} if model else body


async def _timed(client: httpx.AsyncClient, n: int, send: Any) -> dict[str, float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        r = await send(client, i)
        samples.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise RuntimeError(f"status {r.status_code}: {r.text[:200]}")
    return {
        "p50_ms": fig.percentile(samples, 50) * 1000,
        "p99_ms": fig.percentile(samples, 99) * 1000,
    }


async def _paths(port: int, fake_port: int, n: int, tag: str) -> dict[str, dict[str, float]]:
    auth = {"Authorization": f"Bearer {KEY}"}
    base = f"http://127.0.0.1:{port}"
    converse = {"messages": [{"role": "user", "content": [{"text": "direct"}]}]}
    out: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(timeout=30) as c:
        chat = f"{base}/v1/chat/completions"
        for _ in range(20):  # warm connections and code paths
            await c.post(chat, json=_body("warm", "chat"), headers=auth)
        out["floor"] = await _timed(c, n, lambda c, i: c.get(f"{base}/v1/models", headers=auth))
        out["direct"] = await _timed(
            c,
            n,
            lambda c, i: c.post(
                f"http://127.0.0.1:{fake_port}/model/{MODEL}/converse", json=converse
            ),
        )
        out["plain"] = await _timed(
            c, n, lambda c, i: c.post(chat, json=_body(f"p{i}", "plain"), headers=auth)
        )
        out["miss"] = await _timed(
            c, n, lambda c, i: c.post(chat, json=_body(f"{tag}-m{i}", "chat"), headers=auth)
        )
        out["hit"] = await _timed(
            c, n, lambda c, i: c.post(chat, json=_body("warm", "chat"), headers=auth)
        )
    return out


async def _burst(port: int, fake_port: int, n: int, tag: str) -> dict[str, int]:
    auth = {"Authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        before = (await c.get(f"http://127.0.0.1:{fake_port}/_stats")).json()["served"]
        body = _body(f"{tag}-burst-{secrets.token_hex(4)}", "chat")
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        rs = await asyncio.gather(*(c.post(url, json=body, headers=auth) for _ in range(n)))
        after = (await c.get(f"http://127.0.0.1:{fake_port}/_stats")).json()["served"]
    return {
        "requests": n,
        "ok": sum(r.status_code == 200 for r in rs),
        "upstream_calls": after - before,
        "hits": sum(r.headers.get("x-strata-cache") == "hit" for r in rs),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    fake, fake_port = procs.start_fake(workdir, latency_ms=args.latency_ms, chunks=4)
    prefix = f"bench-cache:{secrets.token_hex(4)}:"
    config = _config(workdir, fake_port)
    report: dict[str, Any] = {"load_before": os.getloadavg()}
    gateways = []
    try:
        for name, extra in (
            ("memory", {"STRATA_CACHE_BACKEND": "memory"}),
            (
                "redis",
                {
                    "STRATA_CACHE_BACKEND": "redis",
                    "STRATA_REDIS_URL": REDIS_URL,
                    "STRATA_REDIS_PREFIX": prefix,
                },
            ),
        ):
            proc, port = await procs.start_ready(name, workdir, config, KEY, extra)
            gateways.append(proc)
            report[name] = {
                "paths": await _paths(port, fake_port, args.requests, name),
                "burst": await _burst(port, fake_port, args.burst, name),
            }
    finally:
        for proc in gateways:
            proc.stop()
        fake.stop()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)
        client.close()
    report["load_after"] = os.getloadavg()
    return report


def _print(report: dict[str, Any]) -> None:
    print(f"load average before {report['load_before']}, after {report['load_after']}")
    rows = []
    for backend in ("memory", "redis"):
        paths = report[backend]["paths"]
        floor = paths["floor"]["p50_ms"]
        for name in ("floor", "direct", "plain", "miss", "hit"):
            p = paths[name]
            rows.append(
                [
                    backend,
                    name,
                    f"{p['p50_ms']:.2f}",
                    f"{p['p99_ms']:.2f}",
                    f"{p['p50_ms'] - floor:+.2f}" if name != "direct" else "",
                ]
            )
    print(fig.table(["backend", "path", "p50 ms", "p99 ms", "p50 over floor"], rows))
    for backend in ("memory", "redis"):
        b = report[backend]["burst"]
        print(
            f"{backend}: burst of {b['requests']} identical requests → {b['ok']} ok, "
            f"{b['upstream_calls']} upstream call(s), {b['hits']} hits"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = asyncio.run(main_async(args))
    _print(report)
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    sys.exit(main())
