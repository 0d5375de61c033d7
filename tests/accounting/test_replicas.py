"""Acceptance 2 and 5 on two gateway processes sharing Redis and PostgreSQL: RPM and TPM hold
across replicas; tenants are isolated; a revoked key stops on both replicas."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.accounting.keys import KeyAdmin
from gateway.accounting.store import Database
from tests.accounting.conftest import REDIS_URL, pg_schema, redis_namespace
from tests.accounting.gateways import ADMIN_KEY, chat, replicas, write_config
from tests.accounting.load import burst, wait_for_auth
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply

INPUT_TOKENS = 3


def max_tokens_handler(request: FakeRequest) -> Reply:
    cap = request.body.get("inferenceConfig", {}).get("maxTokens", 4096)
    return Reply(text="ok", input_tokens=INPUT_TOKENS, output_tokens=cap)


@dataclass
class Cluster:
    urls: list[str]
    keys: KeyAdmin
    db: Database
    wire: BedrockWireServer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    with pg_schema() as pg_url, redis_namespace() as prefix:
        db = Database(pg_url, tmp / "test-db")
        db.migrate()
        env = {
            "STRATA_DATABASE_URL": pg_url,
            "STRATA_REDIS_URL": REDIS_URL,
            "STRATA_REDIS_PREFIX": prefix,
        }
        with BedrockWireServer(max_tokens_handler) as wire:
            config = write_config(tmp / "strata.yaml", wire.endpoint_url)
            with replicas(tmp, config, env) as gateways:
                yield Cluster([g.url for g in gateways], KeyAdmin(db), db, wire)
        db.close()


def new_key(cluster: Cluster, tenant: str = "acme", **limits: object) -> tuple[str, str]:
    secret, info = cluster.keys.create(tenant, **limits)  # type: ignore[arg-type]
    for url in cluster.urls:  # each replica picks it up at its next key refresh
        assert wait_for_auth(url, secret, 200, 10) is not None
    return secret, info.id


def test_rpm_holds_across_replicas(cluster: Cluster) -> None:
    key, _ = new_key(cluster, rpm=60)
    before = len(cluster.wire.calls)
    answers = burst(cluster.urls, key, 150, chat(max_tokens=10))
    served = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status != 200]
    assert len(served) == 60
    assert len(cluster.wire.calls) - before == 60
    assert {a.status for a in refused} == {429}
    for answer in refused:
        assert 1 <= int(answer.headers["retry-after"]) <= 61
        assert answer.headers["x-ratelimit-limit-requests"] == "60"
        assert answer.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused[0].code == "rate_limit_exceeded"


def test_tpm_holds_across_replicas(cluster: Cluster) -> None:
    tpm = 6000
    key, _ = new_key(cluster, tpm=tpm)
    mix = [chat(max_tokens=n, text="hi") for n in (200, 900, 350, 1200, 600)]
    answers = burst(cluster.urls, key, 60, mix)
    served = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status != 200]
    assert served and refused
    assert {a.status for a in refused} == {429}, [a.body for a in refused if a.status != 429]
    assert all("x-ratelimit-remaining-tokens" in a.headers for a in refused)
    # Tokens the upstream reported for the calls served stay within the minute's limit.
    used = sum(a.body["usage"]["total_tokens"] for a in served)
    assert used <= tpm
    # ...and the limit was really what stopped them: even the smallest call (refused at a
    # moment when no more than ``used`` was counted) would not have fit.
    smallest = INPUT_TOKENS + 200
    assert used + smallest > tpm
    # A call larger than the whole limit says so instead of asking to retry.
    huge = burst(cluster.urls, key, 1, chat(max_tokens=tpm + 1, text="hi"))[0]
    assert huge.status == 429 and "more than the" in huge.body["error"]["message"]
    print(f"\nTPM {tpm}: {len(served)} of {len(answers)} served, {used} tokens")


def test_tenant_key_cannot_reach_admin_or_other_tenants(cluster: Cluster) -> None:
    key, _ = new_key(cluster, tenant="acme")
    other, _ = new_key(cluster, tenant="globex")
    assert burst(cluster.urls, other, 2, chat())[0].status == 200
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=cluster.urls[0], headers=headers, timeout=30) as c:
        assert c.get("/admin/keys").status_code == 403
        assert c.post("/admin/keys", json={"tenant": "acme", "admin": True}).status_code == 403
        assert c.get("/admin/usage").status_code == 403
        assert c.get("/admin/accounting").status_code == 403
        assert c.put("/admin/tenants/acme", json={"rpm": 1}).status_code == 403
        assert c.get("/v1/usage", params={"tenant": "globex"}).status_code == 403
        own = c.get("/v1/usage", params={"group_by": "tenant"})
        assert own.status_code == 200
        assert {row["group"] for row in own.json()["data"]} <= {"acme"}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=cluster.urls[1], headers=admin, timeout=30) as c:
        # The ledger is written off the request path: poll until globex's calls are in.
        for _ in range(200):
            r = c.get("/admin/usage", params={"group_by": "tenant"})
            assert r.status_code == 200
            if "globex" in {row["group"] for row in r.json()["data"]}:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("globex's calls never reached the ledger")


@pytest.mark.parametrize(
    "model", ["other", "default", "bedrock:test-model", "local:builtin", "no-such-alias"]
)
def test_key_limited_to_chat_reaches_nothing_else(cluster: Cluster, model: str) -> None:
    key, _ = new_key(cluster, models=["chat"])
    before = len(cluster.wire.calls)
    assert burst(cluster.urls, key, 1, chat(model="chat"))[0].status == 200
    refused = burst(cluster.urls, key, 2, chat(model=model))
    # An unknown name is 404 (the route stage plans before admission); the rest are 403.
    assert {a.status for a in refused} == ({404} if model == "no-such-alias" else {403})
    assert len(cluster.wire.calls) - before == 1
    with httpx.Client(base_url=cluster.urls[1], timeout=30) as c:
        r = c.post(
            f"/model/{model}/converse",
            headers={"Authorization": f"Bearer {key}"},
            json={"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        )
        if model == "no-such-alias":
            assert r.status_code == 404
        else:
            assert r.status_code == 403
            assert r.headers["x-amzn-errortype"].startswith("AccessDeniedException")


def test_revoked_key_stops_on_both_replicas(cluster: Cluster) -> None:
    key, key_id = new_key(cluster)
    with httpx.Client(base_url=cluster.urls[0], timeout=30) as c:
        r = c.delete(f"/admin/keys/{key_id}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 200 and r.json()["revoked_at"] is not None
    took = [wait_for_auth(url, key, 401, 10) for url in cluster.urls]
    print(f"\nrevocation seen after {took} s")
    assert all(t is not None and t <= 2.0 for t in took), took
    assert {a.status for a in burst(cluster.urls, key, 4, chat())} == {401}
