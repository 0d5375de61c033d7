"""Acceptance 5: two gateway processes sharing Redis serve each other's entries (and a flush on
one is seen by the other); Redis stopped mid-run gives misses, never a 5xx, and the cache
comes back by itself when Redis does."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.accounting.conftest import REDIS_URL, PrivateRedis, private_redis
from tests.accounting.gateways import ADMIN_KEY, replicas
from tests.cache.conftest import cached_gateway, chat
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.pipeline_harness import AUTH

__all__ = ["private_redis"]  # the fixture

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_two_processes_share_entries_through_redis(
    tmp_path: Path, wire: BedrockWireServer, prefix: str
) -> None:
    config = tmp_path / "strata.yaml"
    config.write_text(
        "aliases:\n  default: bedrock:base-model\n"
        "  chat: {targets: [bedrock:base-model], cache: {ttl_s: 60}}\n"
        f"bedrock:\n  region: us-east-1\n  endpoint_url: {wire.endpoint_url}\n",
        encoding="utf-8",
    )
    env = {
        "STRATA_REDIS_URL": REDIS_URL,
        "STRATA_REDIS_PREFIX": prefix,
        "STRATA_CACHE_BACKEND": "redis",
    }
    with replicas(tmp_path, config, env) as (a, b):

        def ask(gateway_url: str, text: str) -> str:
            r = httpx.post(
                f"{gateway_url}/v1/chat/completions", json=chat(text), headers=HEADERS, timeout=30
            )
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == text
            return r.headers["x-strata-cache"]

        assert ask(a.url, "written by a") == "miss"
        assert ask(b.url, "written by a") == "hit"
        assert ask(b.url, "written by b") == "miss"
        assert ask(a.url, "written by b") == "hit"
        assert len(wire.calls) == 2
        flushed = httpx.post(f"{b.url}/admin/cache/flush", headers=HEADERS, timeout=30).json()
        assert flushed == {"flushed": 2, "tenant": None, "backend": "redis"}
        assert ask(a.url, "written by a") == "miss"
        assert len(wire.calls) == 3


def test_redis_stopped_mid_run_gives_misses_never_5xx(
    tmp_path: Path,
    wire: BedrockWireServer,
    aws_credentials: None,
    private_redis: PrivateRedis,
) -> None:
    with (
        cached_gateway(
            tmp_path, wire, "redis", prefix="strata-cache-test:", redis_url=private_redis.url
        ) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):

        def states(n: int) -> list[tuple[int, str | None]]:
            out = []
            for _ in range(n):
                r = client.post("/v1/chat/completions", json=chat("steady"))
                out.append((r.status_code, r.headers.get("x-strata-cache")))
            return out

        assert states(2) == [(200, "miss"), (200, "hit")]
        private_redis.stop()
        during = states(10)
        assert during == [(200, "miss")] * 10  # every call served, from the upstream
        stats = client.get("/admin/cache").json()
        assert stats["errors"] >= 1
        private_redis.start()  # empty: nothing was saved
        after: list[tuple[int, str | None]] = []
        deadline = time.monotonic() + 20  # Redis is retried 0.5 s after a failure
        while time.monotonic() < deadline:
            after += states(1)
            if after[-1] == (200, "hit"):
                break
            time.sleep(0.1)
        assert {status for status, _ in after} == {200}
        assert after[-1] == (200, "hit")
    assert len(wire.calls) == 1 + 10 + len(after) - 1  # every miss went upstream once
