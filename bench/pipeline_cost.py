"""The pipeline's own CPU per call, without HTTP or an upstream.

    python -m bench.pipeline_cost [--calls 20000]
    python -m bench.pipeline_cost --stages [--calls 5000]

Calls ``Pipeline.converse`` (route → attempt with breaker, budget and retry bookkeeping →
settle) on a provider that answers at once, and the same provider directly, alternating twice;
prints microseconds of process CPU per call. This is what the pipeline adds to every request on
top of the surfaces and the transport that ``bench.overhead`` measures end to end.

``--stages`` builds the gateway's own pipeline instead (``create_app`` and its lifespan, the
Bedrock provider swapped for one that answers at once) in three set-ups: **default** (dev key;
SQLite ledger, metrics, access log to a log handler writing to /dev/null, cache stage), and
**stages** (a database key with RPM, TPM and a budget; Redis limits and budget counters; the
ledger in a PostgreSQL schema made for the run; ``cache:`` on the alias) with every call a
cache **miss** (distinct system prompts) or a **hit**. Process CPU (all threads: the ledger
writer's too) per call, sequential calls, one await each, so no batching helps. The module
imports nothing from ``bench``: ``PYTHONPATH=<other tree> python bench/pipeline_cost.py
--stages`` measures another commit's gateway the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncGenerator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.auth import Principal
from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.pipeline.attempt import AttemptStage
from gateway.pipeline.call import Call, new_request_id
from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.route import Route, RouteStage
from gateway.pipeline.settle import Settle
from gateway.targets import Target

ANSWER = ConverseResponse.model_validate(
    {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }
)


class Instant:
    """A provider that answers at once."""

    async def converse(self, target: Target, request: ConverseRequest) -> ConverseResponse:
        return ANSWER

    async def converse_stream(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        yield {"messageStart": {"role": "assistant"}}

    def ready(self) -> bool:
        return True


async def measure(calls: int) -> dict[str, list[float]]:
    provider = Instant()
    target = Target("bedrock", "m")
    pipeline = Pipeline(
        route=RouteStage({"default": Route("default", (target,))}),
        attempt=AttemptStage({"bedrock": provider}),
        settle=Settle(),
    )
    request = ConverseRequest.model_validate(
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    )
    who = Principal("bench", "bench")
    out: dict[str, list[float]] = {"provider alone": [], "through the pipeline": []}
    for _ in range(2):
        started = time.process_time()
        for _ in range(calls):
            await provider.converse(target, request)
        out["provider alone"].append((time.process_time() - started) / calls * 1e6)
        started = time.process_time()
        for _ in range(calls):
            await pipeline.converse(Call(new_request_id(), who, "bedrock", "default", request))
        out["through the pipeline"].append((time.process_time() - started) / calls * 1e6)
    return out


PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
DEV_KEY = "sk-strata-bench-0123456789abcdef"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


async def _stages_run(home: Any, setup: str, calls: int, pg_url: str, prefix: str) -> float:
    """Process CPU µs per call through the app's own pipeline, in one set-up."""
    from gateway.accounting.keys import KeyAdmin
    from gateway.accounting.store import Database
    from gateway.app import create_app
    from gateway.settings import Settings

    home.mkdir(parents=True, exist_ok=True)
    config = home / "strata.yaml"
    cache = "\n    cache: {ttl_s: 300}" if setup != "default" else ""
    config.write_text(
        f"aliases:\n  default:\n    targets: [bedrock:{MODEL}]{cache}\n"
        "bedrock:\n  region: us-east-1\n  endpoint_url: http://127.0.0.1:9\n",
        encoding="utf-8",
    )
    extra: dict[str, Any] = {}
    token = DEV_KEY
    if setup != "default":
        extra = {"database_url": pg_url, "redis_url": REDIS_URL, "redis_prefix": prefix}
        db = Database(pg_url, home)
        db.migrate()
        token, _ = KeyAdmin(db).create(
            "bench", models=["default"], rpm=10**7, tpm=10**9, budget_usd=Decimal(10**6)
        )
        db.close()
    settings = Settings(home=home, dev_key=DEV_KEY, config=config, **extra)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.strata
        state.pipeline.attempt._providers["bedrock"] = Instant()
        who = state.keys.authenticate(token)
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": 256, "temperature": 0},
        }
        fixed = ConverseRequest.model_validate(body)
        # Distinct requests built before the timing: the surface's parse is not what is measured.
        distinct = [
            ConverseRequest.model_validate({**body, "system": [{"text": f"bench {prefix} {i}"}]})
            for i in range(-200, calls)
        ]

        def request(i: int) -> ConverseRequest:
            return distinct[i + 200] if setup == "miss" else fixed

        for i in range(200):  # warm: imports, pools, the first counters
            await state.pipeline.converse(
                Call(new_request_id(), who, "bedrock", "default", request(-i - 1))
            )
        started = time.process_time()
        for i in range(calls):
            await state.pipeline.converse(
                Call(new_request_id(), who, "bedrock", "default", request(i))
            )
        used = time.process_time() - started
        state.accounting.ledger.flush(timeout_s=60)
    return used / calls * 1e6


async def measure_stages(calls: int, rounds: int) -> dict[str, list[float]]:
    import secrets
    import shutil
    import tempfile

    import psycopg
    import redis

    from gateway.logs import configure

    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 (set-up, closed below)
    stderr, sys.stderr = sys.stderr, devnull
    configure("INFO")  # the access log's handler, writing to /dev/null
    sys.stderr = stderr
    schema = "strata_pcost_" + secrets.token_hex(4)
    prefix = f"strata-pcost:{secrets.token_hex(4)}:"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    pg_url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    root = Path(tempfile.mkdtemp(prefix="strata-pcost-"))
    out: dict[str, list[float]] = {"default": [], "stages, cache miss": [], "stages, cache hit": []}
    try:
        for r in range(rounds):
            for name, setup in zip(out, ("default", "miss", "hit"), strict=True):
                out[name].append(
                    await _stages_run(root / f"{setup}-{r}", setup, calls, pg_url, prefix)
                )
    finally:
        devnull.close()
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        client = redis.Redis.from_url(REDIS_URL)
        for k in client.scan_iter(prefix + "*"):
            client.delete(k)
        client.close()
        shutil.rmtree(root, ignore_errors=True)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline_cost", description=__doc__)
    p.add_argument("--calls", type=int, default=None, help="default 20000, or 3000 with --stages")
    p.add_argument("--stages", action="store_true", help="the app's pipeline, every stage on")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    if args.stages:
        results = asyncio.run(measure_stages(args.calls or 3000, args.rounds))
        print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    else:
        results = asyncio.run(measure(args.calls or 20000))
    for name, runs in results.items():
        print(f"{name}: {', '.join(f'{us:.1f}' for us in runs)} µs CPU per call")


if __name__ == "__main__":
    main()
