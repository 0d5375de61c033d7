"""Acceptance 1 and 3: a second identical request is served with no upstream call (both
backends, both surfaces); tenants and experiment arms never share entries; no-cache, no-store
and temperature; the ledger records hits at cost 0 with the cost saved."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from gateway.accounting.store import Database
from tests.cache.conftest import (
    ALIASES,
    cached_gateway,
    chat,
    converse,
    status_and_cache,
    tenant_key,
)
from tests.fakes.bedrock_wire import BedrockWireServer, Reply
from tests.gateway.pipeline_harness import AUTH, Settled


def _call(client: httpx.Client, surface: str, text: str, **headers: str) -> httpx.Response:
    if surface == "openai":
        return client.post("/v1/chat/completions", json=chat(text), headers=headers)
    return client.post("/model/chat/converse", json=converse(text), headers=headers)


@pytest.mark.parametrize("surface", ["openai", "bedrock"])
def test_second_identical_request_is_a_hit_and_other_tenants_miss(
    surface: str,
    backend: str,
    prefix: str,
    tmp_path: Path,
    wire: BedrockWireServer,
    aws_credentials: None,
) -> None:
    other = tenant_key(tmp_path, "globex")
    with (
        cached_gateway(tmp_path, wire, backend, prefix=prefix) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        first = _call(client, surface, "hello cache")
        assert status_and_cache(first) == (200, "miss")
        second = _call(client, surface, "hello cache")
        assert status_and_cache(second) == (200, "hit")
        assert len(wire.calls) == 1  # the hit made no upstream call
        assert second.headers["x-strata-attempts"] == "0"
        assert second.headers["x-strata-target"] == first.headers["x-strata-target"]
        if surface == "openai":
            a, b = first.json(), second.json()
            assert b["choices"][0]["message"] == a["choices"][0]["message"]
            assert b["usage"] == a["usage"]
        else:
            assert second.json()["output"] == first.json()["output"]
            assert second.json()["usage"] == first.json()["usage"]
        # Another tenant, same request: its own miss and upstream call, then its own hit.
        theirs = _call(client, surface, "hello cache", authorization=f"Bearer {other}")
        assert status_and_cache(theirs) == (200, "miss")
        assert len(wire.calls) == 2
        again = _call(client, surface, "hello cache", authorization=f"Bearer {other}")
        assert status_and_cache(again) == (200, "hit")
        # A different request misses.
        assert status_and_cache(_call(client, surface, "hello other")) == (200, "miss")
        assert len(wire.calls) == 3


def test_both_surfaces_share_one_entry(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    with (
        cached_gateway(tmp_path, wire, "memory") as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        assert status_and_cache(_call(client, "bedrock", "same thing")) == (200, "miss")
        hit = _call(client, "openai", "same thing")
        assert status_and_cache(hit) == (200, "hit")
        assert hit.json()["choices"][0]["message"]["content"] == "same thing"
        assert len(wire.calls) == 1


def test_experiment_arms_never_serve_each_other(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    seen: dict[str, list[str | None]] = {}
    with (
        cached_gateway(tmp_path, wire, "memory") as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        for i in range(16):
            r = client.post(
                "/model/support/converse",
                json=converse("same prompt"),
                headers={"x-strata-user": f"user{i}"},
            )
            assert r.status_code == 200, r.text
            seen.setdefault(r.headers["x-strata-variant"], []).append(r.headers["x-strata-cache"])
    assert set(seen) == {"control", "tuned"}  # 16 users at 50/50: both arms (seeded hashing)
    for states in seen.values():
        assert states[0] == "miss"
        assert set(states[1:]) <= {"hit"}
    # One upstream call per arm, each to its own model.
    assert len(wire.calls) == 2
    assert dict(wire.counts) == {"base-model": 1, "tuned-model": 1}


def test_no_cache_refreshes_and_no_store_neither_reads_nor_writes(
    backend: str, prefix: str, tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    answers = iter(["one", "two", "three", "four"])
    wire.handler = lambda request: Reply(text=next(answers))
    with (
        cached_gateway(tmp_path, wire, backend, prefix=prefix) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):

        def ask(surface: str, **headers: str) -> tuple[str | None, str]:
            r = _call(client, surface, "q", **headers)
            assert r.status_code == 200, r.text
            if surface == "openai":
                return r.headers.get("x-strata-cache"), r.json()["choices"][0]["message"]["content"]
            return r.headers.get("x-strata-cache"), r.json()["output"]["message"]["content"][0][
                "text"
            ]

        assert ask("openai") == ("miss", "one")
        assert ask("bedrock") == ("hit", "one")
        # no-store: neither read nor written, on both surfaces.
        assert ask("openai", **{"cache-control": "no-store"}) == ("bypass", "two")
        assert ask("bedrock", **{"x-strata-cache": "no-store"}) == ("bypass", "three")
        assert ask("openai") == ("hit", "one")
        # no-cache: skips the lookup and refreshes the entry.
        assert ask("bedrock", **{"cache-control": "no-cache, max-age=0"}) == ("bypass", "four")
        assert ask("openai") == ("hit", "four")
        assert len(wire.calls) == 4


def test_temperature_above_zero_is_not_cached_unless_the_route_says_so(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    with (
        cached_gateway(tmp_path, wire, "memory") as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):

        def state(body: dict[str, object]) -> str | None:
            r = client.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            return r.headers.get("x-strata-cache")

        assert [state(chat("t", temperature=0.7)) for _ in range(2)] == ["bypass", "bypass"]
        # No temperature: the model's default, above 0 for most models: not cached either.
        assert [state(chat("t", temperature=None)) for _ in range(2)] == ["bypass", "bypass"]
        assert len(wire.calls) == 4
        # The route `warm` caches whatever the temperature.
        assert [state(chat("t", "warm", temperature=0.7)) for _ in range(2)] == ["miss", "hit"]
        # A route without cache: says bypass.
        assert state(chat("t", "plain")) == "bypass"
        assert len(wire.calls) == 6


PRICED = (
    ALIASES
    + """\
prices:
  "bedrock:base-model": {input_per_mtok: 3, output_per_mtok: 15}
"""
)


def test_hits_are_in_the_ledger_at_cost_zero_with_the_cost_saved(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    settled = Settled()
    with (
        cached_gateway(tmp_path, wire, "memory", settled, aliases=PRICED) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        for _ in range(3):
            assert client.post("/v1/chat/completions", json=chat("price me")).status_code == 200
        events = settled.wait(3)
        stats = client.get("/admin/cache").json()
    assert [o.cache for _, o in events] == ["miss", "hit", "hit"]
    usage = events[0][1].usage
    assert usage is not None
    # What the fake reported, priced by hand: $3 and $15 per million tokens.
    one_call = (Decimal(3) * usage.inputTokens + Decimal(15) * usage.outputTokens) / 10**6
    assert one_call > 0
    assert stats["hits"] == 2 and stats["misses"] == 1 and stats["stores"] == 1
    assert stats["entries"] == 1 and stats["bytes"] > 0
    assert Decimal(stats["saved_usd"]) == 2 * one_call
    db = Database(None, tmp_path / "home")  # the gateway has stopped: its ledger is flushed
    rows = db.query(
        "SELECT cache_hit, cost_pusd, cache_savings_pusd, input_tokens FROM ledger ORDER BY ts"
    )
    pusd = int(one_call * 10**12)
    assert [tuple(r) for r in rows] == [
        (0, pusd, None, usage.inputTokens),  # no cache-read rate: no prompt-cache saving
        (1, 0, pusd, usage.inputTokens),
        (1, 0, pusd, usage.inputTokens),
    ]
    assert len(wire.calls) == 1
