"""Acceptance 3: an unmodified boto3 bedrock-runtime client against a running gateway."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from tests.fakes.bedrock_wire import BedrockWireServer, Reply
from tests.gateway.conftest import BEDROCK_MODEL
from tests.gateway.harness import TEST_KEY


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Any:
    def make(url: str, attempts: int = 1) -> Any:
        # The documented way to call Bedrock with an API key: boto3 sends it as a Bearer token.
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", TEST_KEY)
        return boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=url,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": attempts}, read_timeout=120
            ),
        )

    return make


def test_converse(bedrock_gateway: str, wire: BedrockWireServer, runtime: Any) -> None:
    wire.handler = lambda r: Reply(
        text="hello there", input_tokens=11, output_tokens=2, stop_reason="end_turn"
    )
    out = runtime(bedrock_gateway).converse(
        modelId="haiku",
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
        system=[{"text": "part one"}, {"text": "part two"}],
        inferenceConfig={"maxTokens": 20},
    )
    assert out["output"]["message"] == {"role": "assistant", "content": [{"text": "hello there"}]}
    assert out["stopReason"] == "end_turn"
    assert out["usage"] == {"inputTokens": 11, "outputTokens": 2, "totalTokens": 13}
    assert out["metrics"]["latencyMs"] >= 0
    (call,) = wire.calls
    assert call.model_id == BEDROCK_MODEL
    assert call.body["system"] == [{"text": "part one"}, {"text": "part two"}]
    assert call.body["inferenceConfig"] == {"maxTokens": 20}


def test_converse_by_target_string(
    bedrock_gateway: str, wire: BedrockWireServer, runtime: Any
) -> None:
    runtime(bedrock_gateway).converse(
        modelId=f"bedrock:{BEDROCK_MODEL}", messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    assert wire.calls[0].model_id == BEDROCK_MODEL


def test_converse_stream(bedrock_gateway: str, wire: BedrockWireServer, runtime: Any) -> None:
    wire.handler = lambda r: Reply(
        chunks=["al", "pha", " beta"], input_tokens=3, output_tokens=3, stop_reason="stop_sequence"
    )
    out = runtime(bedrock_gateway).converse_stream(
        modelId="haiku", messages=[{"role": "user", "content": [{"text": "go"}]}]
    )
    events = list(out["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart"
    assert kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == "alpha beta"
    assert events[-2]["messageStop"]["stopReason"] == "stop_sequence"
    assert events[-1]["metadata"]["usage"] == {
        "inputTokens": 3,
        "outputTokens": 3,
        "totalTokens": 6,
    }


def test_throttling_reaches_caller_after_retries(
    bedrock_gateway: str, wire: BedrockWireServer, runtime: Any
) -> None:
    wire.handler = lambda r: Reply(error="ThrottlingException")
    with pytest.raises(ClientError) as info:
        runtime(bedrock_gateway, attempts=2).converse(
            modelId="haiku", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # The gateway's own botocore retries (3 attempts) ran under each of the caller's two.
    assert len(wire.calls) == 3 * 2


@pytest.mark.parametrize(
    ("upstream", "code", "status"),
    [
        ("ModelNotReadyException", "ModelNotReadyException", 429),
        ("ServiceUnavailableException", "ServiceUnavailableException", 503),
        ("ModelTimeoutException", "ModelTimeoutException", 504),
        ("ValidationException", "ValidationException", 400),
        ("AccessDeniedException", "AccessDeniedException", 502),
        ("InternalServerException", "InternalServerException", 502),
    ],
)
def test_upstream_errors_keep_their_bedrock_code(
    bedrock_gateway: str,
    wire: BedrockWireServer,
    runtime: Any,
    upstream: str,
    code: str,
    status: int,
) -> None:
    wire.handler = lambda r: Reply(error=upstream, error_message="internal detail xyz")
    with pytest.raises(ClientError) as info:
        runtime(bedrock_gateway).converse(
            modelId="haiku", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    error = info.value.response["Error"]
    assert error["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    # Upstream words reach the caller only for its own request's faults, never for 5xx.
    assert ("internal detail xyz" in error["Message"]) == (status == 400)


def test_in_stream_exception_reaches_caller(
    bedrock_gateway: str, wire: BedrockWireServer, runtime: Any
) -> None:
    wire.handler = lambda r: Reply(
        chunks=["a", "b", "c"], stream_error="ThrottlingException", stream_error_after=3
    )
    out = runtime(bedrock_gateway).converse_stream(
        modelId="haiku", messages=[{"role": "user", "content": [{"text": "go"}]}]
    )
    seen = []
    with pytest.raises(EventStreamError) as info:
        for event in out["stream"]:
            seen.append(event)
    assert info.value.response["Error"]["Code"] == "throttlingException"
    assert seen and "messageStart" in seen[0]


def test_unknown_alias_is_resource_not_found(bedrock_gateway: str, runtime: Any) -> None:
    with pytest.raises(ClientError) as info:
        runtime(bedrock_gateway).converse(
            modelId="nope", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "haiku" in info.value.response["Error"]["Message"]


def test_wrong_key_is_refused(bedrock_gateway: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "sk-strata-wrong")
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=bedrock_gateway,
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as info:
        client.converse(modelId="haiku", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401


@pytest.mark.slow
def test_local_provider_through_boto3(local_gateway: str, runtime: Any) -> None:
    client = runtime(local_gateway)
    messages = [{"role": "user", "content": [{"text": "reverse: abc"}]}]
    out = client.converse(modelId="default", messages=messages, inferenceConfig={"maxTokens": 16})
    streamed = client.converse_stream(
        modelId="local:builtin", messages=messages, inferenceConfig={"maxTokens": 16}
    )
    events = list(streamed["stream"])
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == out["output"]["message"]["content"][0]["text"]
    assert events[-1]["metadata"]["usage"] == out["usage"]
    assert out["usage"]["inputTokens"] > 0
