"""Acceptance 6: Redis stopped mid-run (a private redis-server). ``open`` serves every call;
``closed`` refuses budgeted keys with a clear 503 and serves the others; no other 5xx; service
comes back by itself when Redis does."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from gateway.accounting.keys import KeyAdmin
from gateway.accounting.store import Database
from gateway.app import create_app
from gateway.settings import Settings
from tests.accounting.conftest import PrivateRedis
from tests.accounting.gateways import chat, write_config
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.harness import TEST_KEY, serve


def call(client: httpx.Client, key: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions", json=chat(max_tokens=10), headers={"Authorization": f"Bearer {key}"}
    )


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_outage_policy(
    policy: str, tmp_path: Path, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    home = tmp_path / "home"
    db = Database(None, home)
    db.migrate()
    admin = KeyAdmin(db)
    budgeted, _ = admin.create("acme", budget_usd=Decimal(100))
    limited, _ = admin.create("acme", rpm=10_000, tpm=10_000_000)
    plain, _ = admin.create("globex")
    with BedrockWireServer() as wire:
        settings = Settings(  # type: ignore[call-arg]
            home=home,
            config=write_config(tmp_path / "strata.yaml", wire.endpoint_url),
            dev_key=TEST_KEY,
            redis_url=private_redis.url,
            budget_on_redis_error=policy,
        )
        with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
            for key in (budgeted, limited, plain):
                assert call(c, key).status_code == 200
            private_redis.stop()
            during: dict[str, list[httpx.Response]] = {"budgeted": [], "limited": [], "plain": []}
            for _ in range(15):
                during["budgeted"].append(call(c, budgeted))
                during["limited"].append(call(c, limited))
                during["plain"].append(call(c, plain))
            assert {r.status_code for r in during["limited"]} == {200}
            assert {r.status_code for r in during["plain"]} == {200}
            if policy == "open":
                assert {r.status_code for r in during["budgeted"]} == {200}
            else:
                assert {r.status_code for r in during["budgeted"]} == {503}
                error = during["budgeted"][0].json()["error"]
                assert error["code"] == "accounting_unavailable"
                assert "budget" in error["message"] and "retry" in error["message"]
            status = c.get("/admin/accounting", headers={"Authorization": f"Bearer {TEST_KEY}"})
            assert status.json()["redis_errors"] > 0

            private_redis.start()
            deadline = time.monotonic() + 20
            while call(c, budgeted).status_code != 200:
                assert time.monotonic() < deadline, "did not recover after Redis came back"
                time.sleep(0.1)
            for key in (budgeted, limited, plain):
                assert call(c, key).status_code == 200
