"""Streams under faults (acceptance 4 of issue 8), with the real openai SDK and boto3: a failure
before the first event falls back transparently; one after it reaches the client as an error
event; settle runs once, with the partial usage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.config import Config
from botocore.exceptions import EventStreamError

from tests.fakes.bedrock_faults import by_model
from tests.fakes.bedrock_wire import BedrockWireServer, Reply
from tests.gateway.harness import TEST_KEY
from tests.gateway.pipeline_harness import AUTH, Settled, converse_body, gateway

CHAIN = """\
  chain:
    targets: [bedrock:primary, bedrock:secondary]
    retry: {max_attempts: 1}
"""
MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
def url(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None, settled: Settled
) -> Iterator[str]:
    with gateway(tmp_path, wire, CHAIN, settled) as url:
        yield url


@pytest.fixture
def runtime(url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", TEST_KEY)
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1}),
    )


def openai_text(url: str) -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
    stream = client.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
    return "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)


def boto3_text(runtime: Any) -> str:
    out = runtime.converse_stream(
        modelId="chain", messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    return "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in out["stream"] if "contentBlockDelta" in e
    )


BEFORE_FIRST_EVENT = {
    "http-error": Reply(error="ServiceUnavailableException"),
    # An exception frame before any event: the stream had started, but no byte reached us.
    "exception-frame": Reply(
        chunks=["x"], stream_error="ThrottlingException", stream_error_after=0
    ),
}


@pytest.mark.parametrize("fault", sorted(BEFORE_FIRST_EVENT))
@pytest.mark.parametrize("client", ["openai", "boto3"])
def test_failure_before_the_first_event_falls_back(
    url: str, wire: BedrockWireServer, runtime: Any, settled: Settled, fault: str, client: str
) -> None:
    wire.handler = by_model(
        {
            "primary": lambda r: BEFORE_FIRST_EVENT[fault],
            "secondary": lambda r: Reply(chunks=["from ", "the ", "fallback"]),
        }
    )
    text = openai_text(url) if client == "openai" else boto3_text(runtime)
    assert text == "from the fallback"
    assert wire.counts == {"primary": 1, "secondary": 1}
    ((_, outcome),) = settled.wait(1)
    assert outcome.error is None and outcome.attempts == 2
    assert str(outcome.target) == "bedrock:secondary"
    assert outcome.usage is not None and outcome.usage.outputTokens == 3
    assert not outcome.usage_partial


def _cut_after_two_deltas(request: Any) -> Reply:
    # messageStart, "hel", "lo " are sent; then the model's stream breaks.
    return Reply(
        chunks=["hel", "lo ", "there"],
        stream_error="ModelStreamErrorException",
        stream_error_after=3,
    )


def _check_partial_settle(settled: Settled, wire: BedrockWireServer) -> None:
    assert wire.counts == {"primary": 1}  # no fallback once the client had bytes
    events = settled.wait(1)
    assert len(events) == 1
    (_, outcome) = events[0]
    assert outcome.error_class == "server_error"
    assert outcome.output_chars == len("hello ")
    assert outcome.usage_partial
    assert outcome.usage is not None
    assert outcome.usage.outputTokens == 2  # 6 characters, 4 to a token, rounded up
    assert outcome.usage.inputTokens == 1


def test_failure_after_the_first_event_is_an_sse_error_for_openai(
    url: str, wire: BedrockWireServer, settled: Settled
) -> None:
    wire.handler = by_model({"primary": _cut_after_two_deltas})
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="chain", messages=MESSAGES, stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received) == "hello "
    assert "failed" in info.value.message
    _check_partial_settle(settled, wire)


def test_failure_after_the_first_event_ends_the_sse_stream_without_done(
    url: str, wire: BedrockWireServer
) -> None:
    wire.handler = by_model({"primary": _cut_after_two_deltas})
    body = {"model": "chain", "messages": MESSAGES, "stream": True}
    r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=AUTH)
    lines = [line for line in r.text.splitlines() if line.startswith("data: ")]
    assert '"error"' in lines[-1]
    assert "data: [DONE]" not in lines
    assert r.headers["x-strata-target"] == "bedrock:primary"
    assert r.headers["x-strata-attempts"] == "1"
    assert len(r.headers["x-strata-request-id"]) == 36


def test_stream_headers_name_the_fallback_that_served(url: str, wire: BedrockWireServer) -> None:
    wire.handler = by_model({"primary": lambda r: Reply(error="ThrottlingException")})
    r = httpx.post(f"{url}/model/chain/converse-stream", json=converse_body("hi"), headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert r.headers["x-strata-target"] == "bedrock:secondary"
    assert r.headers["x-strata-attempts"] == "2"
    assert r.headers["x-amzn-requestid"] == r.headers["x-strata-request-id"]
    assert float(r.headers["x-strata-overhead-ms"]) >= 0


def test_failure_after_the_first_event_is_an_exception_frame_for_boto3(
    runtime: Any, wire: BedrockWireServer, settled: Settled
) -> None:
    wire.handler = by_model({"primary": _cut_after_two_deltas})
    out = runtime.converse_stream(
        modelId="chain", messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    received = []
    with pytest.raises(EventStreamError) as info:
        for event in out["stream"]:
            if "contentBlockDelta" in event:
                received.append(event["contentBlockDelta"]["delta"]["text"])
    assert "".join(received) == "hello "
    assert info.value.response["Error"]["Code"] == "modelStreamErrorException"
    _check_partial_settle(settled, wire)


def test_client_that_goes_away_mid_stream_settles_once(
    url: str, wire: BedrockWireServer, settled: Settled
) -> None:
    words = [f"w{i} " for i in range(100)]
    wire.handler = lambda r: Reply(chunks=words, event_interval_s=0.02)
    with httpx.stream(
        "POST", f"{url}/model/chain/converse-stream", json=converse_body("hi"), headers=AUTH
    ) as r:
        assert r.status_code == 200
        seen = b""
        for chunk in r.iter_raw():  # a few words, then hang up
            seen += chunk
            if b"w3 " in seen:
                break
    events = settled.wait(1)
    assert len(events) == 1
    (_, outcome) = events[0]
    assert outcome.error_class == "client_disconnected"
    assert outcome.usage_partial and outcome.usage is not None
    assert len("w0 w1 w2 w3 ") <= outcome.output_chars < len("".join(words))


@pytest.mark.parametrize("surface", ["bedrock", "openai"])
def test_client_that_leaves_while_the_upstream_is_silent_settles_at_once(
    url: str, wire: BedrockWireServer, settled: Settled, surface: str
) -> None:
    # The upstream sends its first event, then nothing for a minute: no write to the gone
    # client can fail meanwhile, so only watching the connection notices it left.
    wire.handler = lambda r: Reply(chunks=["w0 ", "w1 "], event_interval_s=60.0)
    if surface == "bedrock":
        path, body = "/model/chain/converse-stream", converse_body("hi")
    else:
        path, body = (
            "/v1/chat/completions",
            {"model": "chain", "messages": MESSAGES, "stream": True},
        )
    with httpx.stream("POST", f"{url}{path}", json=body, headers=AUTH) as r:
        assert r.status_code == 200
        next(r.iter_raw())  # the first event's bytes, then hang up
    events = settled.wait(1, timeout_s=20)
    assert len(events) == 1
    (_, outcome) = events[0]
    assert outcome.error_class == "client_disconnected"
    assert outcome.output_chars == 0
    assert outcome.usage_partial
