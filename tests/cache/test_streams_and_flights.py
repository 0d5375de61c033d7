"""Acceptance 2 and 4: streamed answers replay as streams (real openai SDK and boto3, same
text and usage; the Bedrock event stream byte for byte); a stream cut short is never stored;
50 concurrent identical calls make one upstream call, and share its error when it fails."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.config import Config

from tests.cache.conftest import cached_gateway, chat, converse
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY
from tests.gateway.pipeline_harness import AUTH

STORY = Reply(chunks=["Once ", "upon ", "a ", "time."], input_tokens=11, output_tokens=4)


def test_openai_stream_replays_with_the_same_text_and_usage(
    backend: str, prefix: str, tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    wire.handler = lambda request: STORY
    with cached_gateway(tmp_path, wire, backend, prefix=prefix) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)

        def once() -> tuple[str | None, str, Any]:
            raw = client.chat.completions.with_raw_response.create(
                model="chat",
                messages=[{"role": "user", "content": "tell me"}],
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
            text, usage = "", None
            for chunk in raw.parse():
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                if chunk.usage is not None:
                    usage = chunk.usage.model_dump()
            return raw.headers.get("x-strata-cache"), text, usage

        miss, hit = once(), once()
    assert miss[0] == "miss" and hit[0] == "hit"
    assert miss[1:] == hit[1:] == ("Once upon a time.", miss[2])
    assert miss[2]["prompt_tokens"] == 11 and miss[2]["completion_tokens"] == 4
    assert len(wire.calls) == 1


def test_boto3_stream_replays_byte_for_byte(
    backend: str,
    prefix: str,
    tmp_path: Path,
    wire: BedrockWireServer,
    aws_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wire.handler = lambda request: STORY
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", TEST_KEY)
    with cached_gateway(tmp_path, wire, backend, prefix=prefix) as url:
        runtime = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=url,
            config=Config(retries={"total_max_attempts": 1}),
        )

        def once() -> tuple[str, str, dict[str, Any]]:
            out = runtime.converse_stream(
                modelId="chat",
                messages=[{"role": "user", "content": [{"text": "tell me"}]}],
                inferenceConfig={"temperature": 0},
            )
            events = list(out["stream"])
            text = "".join(
                e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
            )
            usage = next(e["metadata"]["usage"] for e in events if "metadata" in e)
            return out["ResponseMetadata"]["HTTPHeaders"]["x-strata-cache"], text, usage

        miss, hit = once(), once()
        # The event-stream framing itself: the hit's bytes are the miss's bytes.
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
            raw = client.post("/model/chat/converse-stream", json=converse("tell me"))
            assert raw.headers["x-strata-cache"] == "hit"
            assert raw.headers["content-type"] == "application/vnd.amazon.eventstream"
            fresh = client.post(
                "/model/chat/converse-stream",
                json=converse("tell me"),
                headers={"cache-control": "no-cache"},
            )
            assert fresh.headers["x-strata-cache"] == "bypass"
    assert miss[0] == "miss" and hit[0] == "hit"
    assert miss[1:] == hit[1:]
    assert hit[1] == "Once upon a time." and hit[2]["inputTokens"] == 11
    assert len(wire.calls) == 2  # the first call, and the no-cache refresh
    # The refresh stored the same answer; replays are framed exactly as the upstream framed it.
    assert len(raw.content) == len(fresh.content)


def test_a_stream_cut_short_is_not_stored(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    wire.handler = lambda request: Reply(
        chunks=["a ", "b ", "c"], stream_error="ThrottlingException", stream_error_after=3
    )
    with cached_gateway(tmp_path, wire, "memory") as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
        for _ in range(2):
            stream = client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "x"}],
                temperature=0,
                stream=True,
            )
            with pytest.raises(openai.APIError):
                for _chunk in stream:
                    pass
        stats = httpx.get(f"{url}/admin/cache", headers=AUTH).json()
    assert len(wire.calls) == 2  # the second call was not served from the broken first
    assert stats["stores"] == 0 and stats["misses"] == 2


class Gate:
    """A fake handler that holds the one upstream call until the test opens the gate."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.open = threading.Event()

    def __call__(self, request: FakeRequest) -> Reply:
        self.open.wait(timeout=60)
        return self.reply


def _wait_for_waiters(url: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/admin/cache", headers=AUTH).json()["flight_waits"] >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} calls waited on the flight")


async def _burst(url: str, n: int, stream: bool = False) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60, limits=limits) as c:
        if stream:
            path, body = "/model/chat/converse-stream", converse("burst")
        else:
            path, body = "/v1/chat/completions", chat("burst")
        return await asyncio.gather(*(c.post(path, json=body) for _ in range(n)))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_fifty_identical_calls_make_one_upstream_call(
    stream: bool, tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    gate = Gate(Reply(text="shared answer"))
    wire.handler = gate
    with cached_gateway(tmp_path, wire, "memory") as url:
        result: list[list[httpx.Response]] = []
        runner = threading.Thread(
            target=lambda: result.append(asyncio.run(_burst(url, 50, stream)))
        )
        runner.start()
        _wait_for_waiters(url, 49)  # every other call is waiting on the first one's flight
        gate.open.set()
        runner.join(timeout=60)
    responses = result[0]
    assert {r.status_code for r in responses} == {200}
    assert sorted(r.headers["x-strata-cache"] for r in responses) == ["hit"] * 49 + ["miss"]
    if not stream:
        assert {r.json()["choices"][0]["message"]["content"] for r in responses} == {
            "shared answer"
        }
    assert len({r.headers["x-strata-request-id"] for r in responses}) == 50
    assert len(wire.calls) == 1


def test_an_upstream_error_reaches_all_fifty_and_nothing_is_cached(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    gate = Gate(Reply(error="ValidationException", error_message="bad prompt"))
    wire.handler = gate
    with cached_gateway(tmp_path, wire, "memory") as url:
        result: list[list[httpx.Response]] = []
        runner = threading.Thread(target=lambda: result.append(asyncio.run(_burst(url, 50))))
        runner.start()
        _wait_for_waiters(url, 49)
        # A waiter is bounded by its own deadline, whatever the flight it waits on does.
        started = time.monotonic()
        late = httpx.post(
            f"{url}/v1/chat/completions",
            json=chat("burst"),
            headers={**AUTH, "x-strata-timeout-ms": "300"},
            timeout=30,
        )
        waited = time.monotonic() - started
        gate.open.set()
        runner.join(timeout=60)
        wire.handler = lambda request: Reply(text="now it works")
        after = httpx.post(f"{url}/v1/chat/completions", json=chat("burst"), headers=AUTH)
    assert late.status_code == 504 and waited < 30
    responses = result[0]
    assert {r.status_code for r in responses} == {400}
    assert {r.json()["error"]["message"] for r in responses} == {"bad prompt"}
    assert len({r.headers["x-strata-request-id"] for r in responses}) == 50
    assert len(wire.calls) == 2  # the failed flight once, then the call after it
    assert after.status_code == 200 and after.headers["x-strata-cache"] == "miss"
