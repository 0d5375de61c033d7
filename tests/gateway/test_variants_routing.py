"""``variant:<name>`` targets resolve through the customize registry, live."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from customize.variants.store import Variant, VariantStore
from gateway.app import create_app
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.conftest import bedrock_settings
from tests.gateway.harness import TEST_KEY, serve

ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0/abc123"


@pytest.fixture
def gateway(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> Iterator[tuple[str, VariantStore]]:
    settings = bedrock_settings(tmp_path, wire)
    store = VariantStore(settings.home / "variants.sqlite")
    with serve(create_app(settings)) as url:
        yield url, store


def test_variant_added_while_running_is_routable(
    gateway: tuple[str, VariantStore], wire: BedrockWireServer
) -> None:
    url, store = gateway
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="variant:support-v2", messages=messages)  # type: ignore[arg-type]
    store.add(Variant(name="support-v2", target=f"bedrock:{ARN}", method="fine_tuning"))
    out = client.chat.completions.create(model="variant:support-v2", messages=messages)  # type: ignore[arg-type]
    assert out.choices[0].message.content == "hi"
    assert wire.calls[-1].model_id == ARN
