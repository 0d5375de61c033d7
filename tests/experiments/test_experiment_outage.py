"""The state store away (PostgreSQL behind a TCP proxy that the test cuts): routing keeps the
last snapshot, decisions answer 503 without the driver's details, and work again after."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.accounting.conftest import pg_schema
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.fakes.tcp_proxy import TcpProxy
from tests.gateway.harness import TEST_KEY, serve

ADMIN = {"Authorization": f"Bearer {TEST_KEY}"}
CREATE = {
    "name": "e1", "alias": "plain", "control": "bedrock:model-a",
    "candidate": "bedrock:model-b", "split": "0/100",
}  # fmt: skip


def test_a_store_outage_keeps_routing_and_refuses_decisions_with_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    with pg_schema() as pg_url, TcpProxy("127.0.0.1", 5432) as proxy, BedrockWireServer() as wire:
        config = tmp_path / "strata.yaml"
        config.write_text(
            f"aliases:\n  plain: bedrock:model-a\nbedrock:\n  endpoint_url: {wire.endpoint_url}\n",
            encoding="utf-8",
        )
        settings = Settings(  # type: ignore[call-arg]
            home=tmp_path / "home",
            config=config,
            dev_key=TEST_KEY,
            database_url=pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"),
            experiments_refresh_s=0.1,
        )
        with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
            assert client.post("/admin/experiments", json=CREATE, headers=ADMIN).status_code == 201
            chat = {"model": "plain", "messages": [{"role": "user", "content": "hi"}]}
            proxy.cut()
            # Routing reads the snapshot: the candidate still gets everything.
            for _ in range(3):
                r = client.post("/v1/chat/completions", json=chat, headers=ADMIN)
                assert r.status_code == 200 and r.headers["x-strata-target"] == "bedrock:model-b"
            r = client.post("/admin/experiments/e1/pause", json={}, headers=ADMIN)
            assert r.status_code == 503, r.text
            message = r.json()["error"]["message"]
            assert message == "the state store is unreachable now; retry later"
            proxy.restore()
            r = client.post("/admin/experiments/e1/pause", json={}, headers=ADMIN)
            assert r.status_code == 200, r.text
            r = client.post("/v1/chat/completions", json=chat, headers=ADMIN)
            assert r.headers["x-strata-target"] == "bedrock:model-a"
