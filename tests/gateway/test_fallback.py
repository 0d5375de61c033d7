"""Alias chains fall back to the next target on retryable upstream errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY, serve


@pytest.fixture
def chain_gateway(tmp_path: Path, wire: BedrockWireServer, aws_credentials: None) -> Iterator[str]:
    config = tmp_path / "strata.yaml"
    config.write_text(f"""
aliases:
  default:
    targets: [bedrock:model-a, bedrock:model-b]
    retry: {{max_attempts: 1}}
bedrock: {{endpoint_url: "{wire.endpoint_url}"}}
""")
    settings = Settings(home=tmp_path, config=config, dev_key=TEST_KEY)
    with serve(create_app(settings)) as url:
        yield url


def by_model(a: Reply, b: Reply) -> object:
    def handler(request: FakeRequest) -> Reply:
        return a if request.model_id == "model-a" else b

    return handler


@pytest.mark.parametrize("stream", [False, True])
def test_throttled_first_target_falls_back(
    chain_gateway: str, wire: BedrockWireServer, stream: bool
) -> None:
    wire.handler = by_model(Reply(error="ThrottlingException"), Reply(text="from b"))  # type: ignore[assignment]
    c = openai.OpenAI(base_url=f"{chain_gateway}/v1", api_key=TEST_KEY, max_retries=0)
    messages = [{"role": "user", "content": "x"}]
    if stream:
        text = "".join(
            ch.choices[0].delta.content or ""
            for ch in c.chat.completions.create(model="default", messages=messages, stream=True)
            if ch.choices
        )  # type: ignore[arg-type]
    else:
        text = (
            c.chat.completions.create(
                model="default",
                messages=messages,  # type: ignore[arg-type]
            )
            .choices[0]
            .message.content
            or ""
        )
    assert text == "from b"
    assert [call.model_id for call in wire.calls] == ["model-a", "model-b"]


def test_validation_errors_do_not_fall_back(chain_gateway: str, wire: BedrockWireServer) -> None:
    wire.handler = by_model(Reply(error="ValidationException"), Reply(text="b"))  # type: ignore[assignment]
    c = openai.OpenAI(base_url=f"{chain_gateway}/v1", api_key=TEST_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="default", messages=[{"role": "user", "content": "x"}])
    assert [call.model_id for call in wire.calls] == ["model-a"]
