"""The admit stage and settle hook in one gateway: unknown prices, the default reservation
cap, tenant-wide budgets and limits, and the Bedrock surface's refusal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import boto3
import botocore.exceptions
import httpx
import pytest

from customize.variants.store import Variant, VariantStore
from gateway.accounting.keys import KeyAdmin
from gateway.accounting.store import Database
from gateway.app import create_app
from gateway.settings import Settings
from tests.accounting.gateways import chat, write_config
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY, serve


def max_tokens_reply(request: FakeRequest) -> Reply:
    cap = request.body.get("inferenceConfig", {}).get("maxTokens", 4096)
    return Reply(text="ok", input_tokens=3, output_tokens=cap)


@dataclass
class Gateway:
    url: str
    keys: KeyAdmin
    db: Database
    wire: BedrockWireServer

    def post(self, key: str, body: dict[str, object]) -> httpx.Response:
        return httpx.post(
            self.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    def key(self, tenant: str = "acme", **limits: object) -> str:
        secret, _ = self.keys.create(tenant, **limits)  # type: ignore[arg-type]
        return secret


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    home = tmp_path / "home"
    db = Database(None, home)
    db.migrate()
    with BedrockWireServer(max_tokens_reply) as wire:
        config = write_config(tmp_path / "strata.yaml", wire.endpoint_url)
        config.write_text(
            config.read_text().replace(
                "  other: bedrock:test-model",
                "  other: bedrock:test-model\n  mystery: bedrock:mystery",
            )
        )
        # Keys refresh fast here so keys created by a test are live at once.
        settings = Settings(  # type: ignore[call-arg]
            home=home, config=config, dev_key=TEST_KEY, keys_refresh_s=0.05
        )
        with serve(create_app(settings)) as url:
            yield Gateway(url, KeyAdmin(db), db, wire)


def wait_live(gateway: Gateway, key: str) -> None:
    for _ in range(200):
        r = httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
        if r.status_code == 200:
            return
    raise AssertionError("key never became live")


def test_unknown_price_records_a_null_cost_and_a_warning(gateway: Gateway) -> None:
    assert gateway.post(TEST_KEY, chat(model="mystery")).status_code == 200
    admin = {"Authorization": f"Bearer {TEST_KEY}"}
    status = httpx.get(gateway.url + "/admin/accounting", headers=admin).json()
    assert status["warnings"]["unknown_price"] == 1
    for _ in range(100):  # the ledger writes off the request path
        rows = gateway.db.query("SELECT cost_pusd, pricing FROM ledger")
        if rows:
            break
        time.sleep(0.05)
    assert rows == [(None, "unknown")]
    usage = httpx.get(
        gateway.url + "/admin/usage", params={"group_by": "model"}, headers=admin
    ).json()["data"]
    assert usage[0]["unpriced_requests"] == 1 and usage[0]["cost_usd"] == "0"


def test_budgeted_key_cannot_use_an_unpriced_model(gateway: Gateway) -> None:
    key = gateway.key(budget_usd=Decimal(10))
    wait_live(gateway, key)
    r = gateway.post(key, chat(model="mystery"))
    assert r.status_code == 403 and "no price is known" in r.json()["error"]["message"]
    assert gateway.wire.calls == []
    # The refusal is in the ledger, at a known cost of nothing (not an unknown one).
    for _ in range(100):
        rows = gateway.db.query("SELECT status, cost_pusd, pricing, error_class FROM ledger")
        if rows:
            break
        time.sleep(0.05)
    assert rows == [(403, 0, "none", "refused")]


def test_missing_max_tokens_reserves_the_default_cap(gateway: Gateway) -> None:
    # 4096 default output tokens at $10/M is $0.04096: more than this $0.04 budget.
    key = gateway.key(budget_usd=Decimal("0.04"))
    wait_live(gateway, key)
    refused = gateway.post(key, chat(max_tokens=None))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"
    assert gateway.post(key, chat(max_tokens=100)).status_code == 200
    assert len(gateway.wire.calls) == 1


def test_tenant_budget_and_rpm_are_shared_by_its_keys(gateway: Gateway) -> None:
    gateway.keys.set_tenant("shared", budget_usd=Decimal("0.003"))  # three calls of $0.001
    keys = [gateway.key("shared"), gateway.key("shared")]
    for key in keys:
        wait_live(gateway, key)
    statuses = [gateway.post(keys[i % 2], chat(max_tokens=100)).status_code for i in range(6)]
    assert statuses.count(200) == 3 and statuses.count(429) == 3
    gateway.keys.set_tenant("limited", rpm=4)
    keys = [gateway.key("limited"), gateway.key("limited")]
    for key in keys:
        wait_live(gateway, key)
    statuses = [gateway.post(keys[i % 2], chat(max_tokens=1)).status_code for i in range(8)]
    assert statuses.count(200) == 4


def test_bedrock_surface_refuses_over_budget_as_throttling(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = gateway.key(budget_usd=Decimal("0.0005"))
    wait_live(gateway, key)
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", key)
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=gateway.url,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.converse(
            modelId="chat",
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
            inferenceConfig={"maxTokens": 100},
        )
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert "budget exceeded" in err.value.response["Error"]["Message"]
    assert gateway.wire.calls == []


def test_a_scoped_key_sees_only_the_models_it_may_reach(gateway: Gateway, tmp_path: Path) -> None:
    """Issue 9's leak: ``/v1/models`` and the unknown-model 404 named every alias to a key
    scoped to some of them. Now a key sees the aliases it may use, and variants only when its
    ``allow_targets`` reach them; an admin key sees everything."""
    VariantStore(tmp_path / "home" / "variants.sqlite").add(
        Variant(name="secret-v1", target="bedrock:test-model", method="fine_tuning")
    )
    chat_only = gateway.key(models=["chat"])
    variants_too = gateway.key(tenant="ops", allow_targets=["variant:*"])
    wait_live(gateway, chat_only)
    wait_live(gateway, variants_too)

    def listed(key: str) -> list[str]:
        r = httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["data"]]

    everything = ["chat", "default", "mystery", "other", "variant:secret-v1"]
    assert listed(TEST_KEY) == everything
    assert listed(chat_only) == ["chat"]
    assert listed(variants_too) == everything  # no alias list: every alias, and the variants

    headers = {"Authorization": f"Bearer {chat_only}"}
    hidden = httpx.get(gateway.url + "/v1/models/other", headers=headers)
    assert hidden.status_code == 404
    unknown = gateway.post(chat_only, chat(model="nope"))
    assert unknown.status_code == 404
    message = unknown.json()["error"]["message"]
    assert "known aliases: chat " in message
    for name in ("other", "mystery", "default", "secret-v1"):
        assert name not in message, message
    assert "other" in gateway.post(TEST_KEY, chat(model="nope")).json()["error"]["message"]
