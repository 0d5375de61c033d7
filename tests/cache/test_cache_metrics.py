"""Regression: the cache's result reaches the metrics core for every call. Before, only hits
were marked (``call.context["cache_hit"]``), so misses and bypasses were exported as if the
cache were off and ``strata_cache_lookups`` counted hits alone."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.cache.conftest import ALIASES, cached_gateway, chat
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.pipeline_harness import AUTH

SEMANTIC = (
    ALIASES
    + """\
  faq:
    targets: ["bedrock:base-model"]
    cache: {ttl_s: 60}
    semantic_cache: {threshold: 0.92}
"""
)


def lookups(text: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == "strata_cache_lookups":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out[sample.labels["result"]] += int(sample.value)
    return out


def test_misses_and_bypasses_are_counted_not_off(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    with (
        cached_gateway(tmp_path, wire, "memory", aliases=SEMANTIC) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        calls = [
            chat("one"),  # miss
            chat("one"),  # hit
            chat("two", temperature=0.5),  # bypass
            chat("two", model="plain"),  # the route has no cache: bypass too
            chat("How do I reset my password?", model="faq"),  # miss
            chat("how can I reset my password", model="faq"),  # semantic-hit
        ]
        for body in calls:
            assert client.post("/v1/chat/completions", json=body).status_code == 200
        deadline = time.monotonic() + 10
        while True:  # settle runs just after each response
            seen = lookups(client.get("/metrics").text)
            if sum(seen.values()) >= 6 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert seen == {"miss": 2, "hit": 1, "bypass": 2, "semantic-hit": 1}
