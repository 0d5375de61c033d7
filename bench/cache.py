"""What the response cache costs and saves: a cache hit (in-process and Redis) against the
gateway's own floor for the same path, a miss, a semantic hit and the upstream called directly;
and single-flight's upstream calls under a burst of identical requests.

    python -m bench.cache [--requests 300] [--latency-ms 0] [--burst 200] [--json out.json]

Starts the Bedrock-wire fake (``--latency-ms`` per answer; 0: a no-op upstream) and two
``strata serve`` processes, one per cache backend (``memory``; ``redis`` on the machine's Redis
under a private key prefix, deleted after). One client, loopback HTTP, one request at a time,
the paths *interleaved* (each round sends one request of every path on both gateways, in a
rotating order), so load swings hit every path alike. Per path, p50 and p99 of

- the client's end-to-end time, and
- the gateway's own time (``x-strata-overhead-ms``: the call's time minus its upstream wait).

Paths, all the same request shape (one short user message, temperature 0, the same model):

- ``floor``: an alias without ``cache:``: the pipeline with the cache off;
- ``hit``: the cached alias, one prompt (no upstream call);
- ``miss``: the cached alias, a new prompt each time (lookup + upstream + store);
- ``semantic``: a ``semantic_cache:`` alias, a paraphrase of a stored prompt (exact lookup,
  local embedding, vector search, entry read);
- ``direct``: the fake's Converse called without the gateway.

"Added over the floor" is ``hit`` minus ``floor`` in gateway time: what a hit costs beyond the
pipeline a call goes through anyway (the floor's upstream wait is excluded, so a hit is not
credited for the upstream call it saves). Then ``--burst`` identical requests at once on a new
prompt: how many reached the fake. Load averages are printed with the figures: the machine is
shared.
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
        f"  faq: {{targets: [bedrock:{MODEL}], cache: {{ttl_s: 600}}, "
        "semantic_cache: {threshold: 0.92}}\n"
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


PATHS = ("floor", "hit", "miss", "semantic")
STORED = "How do I reset my password?"
PARAPHRASE = "how can I reset my password"


def _summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": fig.percentile(samples, 50), "p99_ms": fig.percentile(samples, 99)}


async def _interleaved(
    ports: dict[str, int], fake_port: int, n: int
) -> dict[str, dict[str, dict[str, float]]]:
    """{backend: {path: {e2e p50/p99, gateway p50/p99}}} plus {"direct": ...}."""
    auth = {"Authorization": f"Bearer {KEY}"}
    converse = {"messages": [{"role": "user", "content": [{"text": "direct"}]}]}
    direct_url = f"http://127.0.0.1:{fake_port}/model/{MODEL}/converse"
    e2e: dict[tuple[str, str], list[float]] = {}
    own: dict[tuple[str, str], list[float]] = {}

    def body(backend: str, path: str, i: int) -> dict[str, Any]:
        if path == "floor":
            return _body("same prompt", "plain")
        if path == "hit":
            return _body("same prompt", "chat")
        if path == "miss":
            return _body(f"{backend}-m{i}", "chat")
        return _body(PARAPHRASE, "faq")

    expect = {"floor": "bypass", "hit": "hit", "miss": "miss", "semantic": "semantic-hit"}
    async with httpx.AsyncClient(timeout=30) as c:
        for port in ports.values():  # fill the entries, warm connections and code paths
            chat = f"http://127.0.0.1:{port}/v1/chat/completions"
            await c.post(chat, json=_body(STORED, "faq"), headers=auth)
            for _ in range(20):
                for path in PATHS:
                    await c.post(chat, json=body("warm", path, -1), headers=auth)
        order = [(b, p) for b in ports for p in PATHS] + [("direct", "direct")]
        for i in range(n):
            shift = i % len(order)
            for backend, path in order[shift:] + order[:shift]:
                started = time.perf_counter()
                if path == "direct":
                    r = await c.post(direct_url, json=converse)
                else:
                    url = f"http://127.0.0.1:{ports[backend]}/v1/chat/completions"
                    r = await c.post(url, json=body(backend, path, i), headers=auth)
                elapsed = (time.perf_counter() - started) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"{backend} {path}: {r.status_code}: {r.text[:200]}")
                e2e.setdefault((backend, path), []).append(elapsed)
                if path != "direct":
                    if r.headers.get("x-strata-cache") != expect[path]:
                        raise RuntimeError(f"{backend} {path}: {r.headers.get('x-strata-cache')}")
                    own.setdefault((backend, path), []).append(
                        float(r.headers["x-strata-overhead-ms"])
                    )
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (backend, path), samples in e2e.items():
        row = {f"e2e_{k}": v for k, v in _summary(samples).items()}
        if (backend, path) in own:
            row.update({f"gateway_{k}": v for k, v in _summary(own[(backend, path)]).items()})
        out.setdefault(backend, {})[path] = row
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
    report: dict[str, Any] = {"load_before": os.getloadavg(), "latency_ms": args.latency_ms}
    gateways = []
    ports: dict[str, int] = {}
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
            ports[name] = port
        report["paths"] = await _interleaved(ports, fake_port, args.requests)
        report["load_mid"] = os.getloadavg()
        for name, port in ports.items():
            report[name] = {"burst": await _burst(port, fake_port, args.burst, name)}
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
    print(
        f"upstream latency {report['latency_ms']} ms; load average before "
        f"{report['load_before']}, after the paths {report['load_mid']}, "
        f"at the end {report['load_after']}"
    )
    rows = []
    paths = report["paths"]
    for backend in ("memory", "redis"):
        floor = paths[backend]["floor"]
        for name in PATHS:
            p = paths[backend][name]
            added = p["gateway_p50_ms"] - floor["gateway_p50_ms"]
            rows.append(
                [
                    backend,
                    name,
                    f"{p['e2e_p50_ms']:.2f}",
                    f"{p['e2e_p99_ms']:.2f}",
                    f"{p['gateway_p50_ms']:.2f}",
                    f"{p['gateway_p99_ms']:.2f}",
                    f"{added:+.2f}" if name != "floor" else "",
                ]
            )
    d = paths["direct"]["direct"]
    rows.append(["-", "direct", f"{d['e2e_p50_ms']:.2f}", f"{d['e2e_p99_ms']:.2f}", "", "", ""])
    header = ["backend", "path", "e2e p50", "e2e p99", "gw p50", "gw p99", "gw p50 - floor"]
    print(fig.table(header, rows))
    print("(ms; gw: the gateway's own time, x-strata-overhead-ms)")
    for backend in ("memory", "redis"):
        b = report[backend]["burst"]
        print(
            f"{backend}: burst of {b['requests']} identical requests → {b['ok']} ok, "
            f"{b['upstream_calls']} upstream call(s), {b['hits']} hits"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = asyncio.run(main_async(args))
    _print(report)
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    sys.exit(main())
