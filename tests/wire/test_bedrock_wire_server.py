"""The loopback Bedrock server, reached only through the real boto3 and aiobotocore clients."""

from __future__ import annotations

import asyncio
import functools
import http.client
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from tests.fakes.bedrock_wire import (
    BedrockWireServer,
    FakeRequest,
    Reply,
    fault_sequence,
    split_even,
    stream_exceptions,
)

ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-v1:0"
REPO_ROOT = Path(__file__).resolve().parents[2]
NO_RETRY: Any = {"total_max_attempts": 1}  # Any: the stubs type it as a private TypedDict
ERRORS = [
    "ThrottlingException",
    "ModelNotReadyException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelTimeoutException",
    "ValidationException",
    "AccessDeniedException",
    "ResourceNotFoundException",
    "ModelErrorException",
]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def client(endpoint_url: str, retries: Any = None) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries=retries or NO_RETRY),
    )


def aio_client(server: BedrockWireServer) -> Any:
    return get_session().create_client(
        "bedrock-runtime",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=AioConfig(retries=NO_RETRY),
    )


@functools.cache
def expected_status(code: str) -> int:
    """The status the bedrock-runtime service model gives the error: an independent source."""
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    status: int = model.shape_for(code).metadata["error"]["httpStatusCode"]
    return status


@pytest.fixture(scope="module")
def running_server() -> Iterator[BedrockWireServer]:
    with BedrockWireServer() as running:
        yield running


@pytest.fixture
def server(running_server: BedrockWireServer) -> BedrockWireServer:
    running_server.reset()
    return running_server


def test_converse_echoes_and_the_handler_sees_the_request(server: BedrockWireServer) -> None:
    response = client(server.endpoint_url).converse(
        modelId=ARN,
        system=[{"text": "You are terse."}],
        messages=user("hello wide world"),
        inferenceConfig={"maxTokens": 64, "temperature": 0.2, "stopSequences": ["END"]},
    )
    assert response["output"]["message"] == {
        "role": "assistant",
        "content": [{"text": "hello wide world"}],
    }
    assert response["stopReason"] == "end_turn"
    assert response["usage"] == {"inputTokens": 6, "outputTokens": 3, "totalTokens": 9}
    assert response["metrics"]["latencyMs"] >= 0
    (call,) = server.calls
    assert (call.index, call.model_id, call.stream) == (0, ARN, False)
    assert call.body["inferenceConfig"] == {
        "maxTokens": 64,
        "temperature": 0.2,
        "stopSequences": ["END"],
    }
    assert call.body["system"] == [{"text": "You are terse."}]
    assert call.headers["authorization"].startswith("AWS4-HMAC-SHA256")


def test_scripted_usage_stop_reason_and_latency(server: BedrockWireServer) -> None:
    server.handler = lambda request: Reply(
        text="cut",
        stop_reason="max_tokens",
        input_tokens=11,
        output_tokens=1,
        cache_read_tokens=100,
        cache_write_tokens=7,
        latency_s=0.2,
    )
    response = client(server.endpoint_url).converse(
        modelId="amazon.nova-lite-v1:0", messages=user("q")
    )
    assert response["stopReason"] == "max_tokens"
    assert response["usage"] == {
        "inputTokens": 11,
        "outputTokens": 1,
        "cacheReadInputTokens": 100,
        "cacheWriteInputTokens": 7,
        "totalTokens": 119,
    }
    assert response["metrics"]["latencyMs"] >= 190


def test_converse_stream_events_in_bedrock_order(server: BedrockWireServer) -> None:
    server.handler = lambda request: Reply(chunks=["Hel", "lo", ", you"], output_tokens=3)
    response = client(server.endpoint_url).converse_stream(modelId=ARN, messages=user("say hello"))
    events = list(response["stream"])
    assert [next(iter(event)) for event in events] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert events[0]["messageStart"] == {"role": "assistant"}
    deltas = [e["contentBlockDelta"] for e in events if "contentBlockDelta" in e]
    assert [d["delta"]["text"] for d in deltas] == ["Hel", "lo", ", you"]
    assert {d["contentBlockIndex"] for d in deltas} == {0}
    assert events[4]["contentBlockStop"] == {"contentBlockIndex": 0}
    assert events[5]["messageStop"] == {"stopReason": "end_turn"}
    assert events[6]["metadata"]["usage"] == {
        "inputTokens": 2,
        "outputTokens": 3,
        "totalTokens": 5,
    }
    assert server.calls[0].stream is True
    assert server.calls[0].model_id == ARN


def test_default_stream_deltas_rebuild_the_text_exactly(server: BedrockWireServer) -> None:
    text = "  Two lines,\n\tthen   spaces  "
    server.handler = lambda request: Reply(text=text)
    response = client(server.endpoint_url).converse_stream(modelId="m", messages=user("hi"))
    deltas = [
        event["contentBlockDelta"]["delta"]["text"]
        for event in response["stream"]
        if "contentBlockDelta" in event
    ]
    assert "".join(deltas) == text
    assert len(deltas) == len(text.split()) + 1  # one per word, plus the leading spaces


@pytest.mark.parametrize("code", ERRORS)
def test_error_codes_surface_as_botocore_errors(server: BedrockWireServer, code: str) -> None:
    server.handler = lambda request: Reply(error=code, error_message=f"scripted {code}")
    bedrock = client(server.endpoint_url)
    for call in (bedrock.converse, bedrock.converse_stream):
        with pytest.raises(ClientError) as info:
            call(modelId="m", messages=user("hi"))
        assert info.value.response["Error"] == {"Code": code, "Message": f"scripted {code}"}
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == expected_status(code)
        assert type(info.value).__name__ == code


@pytest.mark.parametrize("member", sorted(stream_exceptions()))
def test_in_stream_exception_raised_while_iterating(server: BedrockWireServer, member: str) -> None:
    code = member[0].upper() + member[1:]
    server.handler = lambda request: Reply(
        text="one two three", stream_error=code, stream_error_after=3, error_message="mid-stream"
    )
    response = client(server.endpoint_url).converse_stream(modelId="m", messages=user("hi"))
    seen = []
    with pytest.raises(EventStreamError) as info:
        for event in response["stream"]:
            seen.append(event)
    assert [next(iter(e)) for e in seen] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
    ]
    assert info.value.response["Error"] == {"Code": member, "Message": "mid-stream"}


def test_fault_sequence_then_success_with_retries(server: BedrockWireServer) -> None:
    server.handler = fault_sequence(["ThrottlingException", "ServiceUnavailableException", None])
    bedrock = client(server.endpoint_url, {"mode": "standard", "total_max_attempts": 4})
    response = bedrock.converse(modelId="m", messages=user("persist"))
    assert response["output"]["message"]["content"] == [{"text": "persist"}]
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert [call.index for call in server.calls] == [0, 1, 2]
    # botocore numbers its attempts in this header; the retries must reach the server.
    attempts = [
        dict(part.strip().split("=") for part in call.headers["amz-sdk-request"].split(";"))
        for call in server.calls
    ]
    assert [a["attempt"] for a in attempts] == ["1", "2", "3"]


def test_fault_sequence_without_retries_fails_once(server: BedrockWireServer) -> None:
    server.handler = fault_sequence(["ModelNotReadyException"])
    bedrock = client(server.endpoint_url)
    with pytest.raises(ClientError, match="ModelNotReadyException"):
        bedrock.converse(modelId="m", messages=user("a"))
    assert bedrock.converse(modelId="m", messages=user("b"))["stopReason"] == "end_turn"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "must start with a user message"),
        (
            {"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]},
            "must start with a user message",
        ),
        ({"messages": user("a") + user("b")}, "alternate between user and assistant"),
        ({"messages": user("")}, "blank"),
        ({"messages": [{"role": "user", "content": []}]}, "at least one content block"),
        ({"messages": user("a"), "inferenceConfig": {"temperature": 1.5}}, "between 0 and 1"),
    ],
)
def test_malformed_bodies_get_validation_exception(
    server: BedrockWireServer, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as info:
        client(server.endpoint_url).converse(modelId="m", **kwargs)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert message in info.value.response["Error"]["Message"]
    assert server.calls == []


def raw_post(server: BedrockWireServer, path: str, body: bytes) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("POST", path, body, {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, response.getheader("x-amzn-ErrorType", ""), response.read()
    finally:
        connection.close()


def test_bad_json_and_unknown_paths(server: BedrockWireServer) -> None:
    status, error_type, _ = raw_post(server, "/model/m/converse", b"{not json")
    assert (status, error_type.split(":")[0]) == (400, "ValidationException")
    status, error_type, _ = raw_post(server, "/model/m/invoke-agent", b"{}")
    assert (status, error_type.split(":")[0]) == (404, "UnknownOperationException")


def test_broken_handler_becomes_internal_server_error(server: BedrockWireServer) -> None:
    def broken(request: FakeRequest) -> Reply:
        raise KeyError("oops")

    server.handler = broken
    with pytest.raises(ClientError) as info:
        client(server.endpoint_url).converse(modelId="m", messages=user("hi"))
    assert info.value.response["Error"]["Code"] == "InternalServerException"
    assert "KeyError" in info.value.response["Error"]["Message"]


async def test_aiobotocore_converse_stream_and_errors(server: BedrockWireServer) -> None:
    async with aio_client(server) as bedrock:
        response = await bedrock.converse(modelId=ARN, messages=user("async hello"))
        assert response["output"]["message"]["content"] == [{"text": "async hello"}]

        response = await bedrock.converse_stream(modelId=ARN, messages=user("a b c"))
        texts = [
            event["contentBlockDelta"]["delta"]["text"]
            async for event in response["stream"]
            if "contentBlockDelta" in event
        ]
        assert texts == ["a ", "b ", "c"]

        server.handler = lambda request: Reply(error="ThrottlingException")
        with pytest.raises(ClientError) as info:
            await bedrock.converse(modelId=ARN, messages=user("x"))
        assert info.value.response["Error"]["Code"] == "ThrottlingException"

        server.handler = lambda request: Reply(
            text="x y", stream_error="ModelStreamErrorException", stream_error_after=1
        )
        response = await bedrock.converse_stream(modelId=ARN, messages=user("x"))
        with pytest.raises(EventStreamError) as stream_info:
            async for _ in response["stream"]:
                pass
        assert stream_info.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert [call.model_id for call in server.calls] == [ARN] * 4


async def test_concurrent_streams_do_not_cross(server: BedrockWireServer) -> None:
    server.handler = lambda request: Reply(
        chunks=split_even(request.last_user_text, 4), latency_s=0.02, event_interval_s=0.005
    )

    async def one(bedrock: Any, i: int) -> str:
        response = await bedrock.converse_stream(modelId="m", messages=user(f"request {i}"))
        parts = [
            event["contentBlockDelta"]["delta"]["text"]
            async for event in response["stream"]
            if "contentBlockDelta" in event
        ]
        assert len(parts) == 4
        return "".join(parts)

    async with aio_client(server) as bedrock:
        answers = await asyncio.gather(*(one(bedrock, i) for i in range(32)))
    assert answers == [f"request {i}" for i in range(32)]
    assert sorted(call.index for call in server.calls) == list(range(32))


def test_standalone_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.bedrock_wire", "--port", "0", "--chunks", "5"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        assert ready[0] == "READY"
        endpoint_url = f"http://127.0.0.1:{ready[1]}"
        response = client(endpoint_url).converse_stream(modelId=ARN, messages=user("split me up"))
        parts = [
            e["contentBlockDelta"]["delta"]["text"]
            for e in response["stream"]
            if "contentBlockDelta" in e
        ]
        assert len(parts) == 5
        assert "".join(parts) == "split me up"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
