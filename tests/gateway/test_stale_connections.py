"""Pooled upstream connections the server has already closed (the direct transport's pool).

Servers close idle kept-alive connections (uvicorn after 5 s, AWS endpoints after 60 s); the
pool keeps them 12 s. A request must not fail because it drew such a connection: one the peer
is known to have closed is dropped before use, and a request the peer reset unanswered on a
reused connection is sent once more on a new one, within the same attempt. Anything else (a new
connection failing, a reply cut after its first bytes) stays an error.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
import orjson
import pytest
from aiohttp import ClientOSError
from botocore.config import Config

from gateway.app import create_app
from gateway.errors import UpstreamError
from gateway.providers.bedrock_direct import DirectBedrockProvider
from gateway.providers.bedrock_direct_wire import transport_error
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.fakes.idle_reset_proxy import IdleResetProxy
from tests.gateway.harness import TEST_KEY, serve
from tests.gateway.pipeline_harness import AUTH, Settled
from tests.gateway.test_bedrock_direct import TARGET, chat, opened, outcome

IDLE_S = 0.5  # the proxy's idle close; the pool would keep the connections 12 s


async def _round(provider: Any, count: int, *, stream: bool) -> list[Any]:
    """``count`` concurrent calls; the errors they raised (None for each success)."""
    calls = (outcome(provider, chat(), stream=stream) for _ in range(count))
    results = await asyncio.gather(*calls)
    return [error for _, error in results]


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "stream"])
async def test_connections_the_server_closed_unseen_are_not_used(
    aws_credentials: None, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="strata.bedrock")
    with BedrockWireServer(keep_alive_s=1) as wire:
        async with opened(DirectBedrockProvider, wire.endpoint_url) as provider:
            assert await _round(provider, 4, stream=stream) == [None] * 4
            # The event loop is held (as by a long synchronous step) while the fake closes the
            # four idle connections: their FINs wait in the kernel, not yet seen by aiohttp.
            time.sleep(2.5)  # noqa: ASYNC251 (blocking the loop is the point)
            assert await _round(provider, 8, stream=stream) == [None] * 8
    assert wire.app.served == 12  # each call reached the fake once
    # Caught before use, by the check: no request was written onto a closed connection.
    assert not [r for r in caplog.records if "resending" in r.getMessage()]


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "stream"])
async def test_a_request_reset_unanswered_on_a_reused_connection_is_sent_once_more(
    aws_credentials: None, stream: bool
) -> None:
    with (
        BedrockWireServer() as wire,
        IdleResetProxy(wire.port, idle_s=IDLE_S) as proxy,
    ):
        async with opened(DirectBedrockProvider, proxy.endpoint_url) as provider:
            assert await _round(provider, 4, stream=stream) == [None] * 4
            await asyncio.sleep(IDLE_S * 3)
            assert await _round(provider, 8, stream=stream) == [None] * 8
    assert proxy.resets >= 1  # the race happened, and was lost, on some pooled connection
    assert wire.app.served == 12  # the reset requests never reached it; each call came once


async def test_a_new_connection_reset_is_an_error_and_not_resent(aws_credentials: None) -> None:
    with BedrockWireServer() as wire, IdleResetProxy(wire.port, idle_s=0) as proxy:
        async with opened(DirectBedrockProvider, proxy.endpoint_url) as provider:
            assert [type(e) for e in await _round(provider, 1, stream=False)] == [
                type(_reset_error())
            ]
    assert (proxy.connections, proxy.resets, wire.app.served) == (1, 1, 0)


async def test_the_resend_is_made_once(aws_credentials: None) -> None:
    with BedrockWireServer() as wire, IdleResetProxy(wire.port, idle_s=IDLE_S) as proxy:
        async with opened(DirectBedrockProvider, proxy.endpoint_url) as provider:
            assert await _round(provider, 1, stream=False) == [None]
            proxy.idle_s = 0  # from now on every request is reset, the resend's too
            errors = await _round(provider, 1, stream=False)
    assert isinstance(errors[0], UpstreamError)
    assert (proxy.connections, proxy.resets, wire.app.served) == (2, 2, 1)


def _reset_error() -> UpstreamError:
    # What a reset has always given: the same error as before this change, only not resent.
    return transport_error(ClientOSError(errno.ECONNRESET, "Connection reset by peer"))


CONVERSE_REPLY = orjson.dumps(
    {
        "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        "metrics": {"latencyMs": 1},
    }
)


@asynccontextmanager
async def _cut_after_first_reply() -> AsyncIterator[tuple[str, list[int]]]:
    """An HTTP/1.1 Converse server that answers a connection's first request in full and the
    second with the first line of a reply, then closes: the peer had read that request."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(2):
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            match = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(match[1]) if match else 0)
            served.append(n)
            if n == 0:
                length = f"Content-Length: {len(CONVERSE_REPLY)}\r\n".encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + length)
                writer.write(b"\r\n" + CONVERSE_REPLY)
            else:
                writer.write(b"HTTP/1.1 200 OK\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", served
    finally:
        server.close()


async def test_a_reply_cut_after_its_first_bytes_is_an_error_and_not_resent(
    aws_credentials: None,
) -> None:
    async with (
        _cut_after_first_reply() as (url, served),
        opened(DirectBedrockProvider, url) as provider,
    ):
        assert (await provider.converse(TARGET, chat())).output.message.content[0].text == "hi"
        errors = await _round(provider, 1, stream=False)
    assert isinstance(errors[0], UpstreamError)
    assert served == [0, 1]  # the second request was read, and not sent again


ROUTE = """\
aliases:
  default: bedrock:default-model
  chat:
    targets: [bedrock:primary]
    retry: {max_attempts: 1}
    breaker: {failures: 1, window_s: 60, cooldown_s: 60}
bedrock:
  region: us-east-1
  endpoint_url: %s
"""


def test_a_burst_after_idleness_through_the_gateway_all_succeeds(
    tmp_path: Path, aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real openai and boto3 clients; a route with no retries and a breaker that opens on the
    first failure, so any upstream failure would show as a 5xx."""
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", TEST_KEY)  # how boto3 sends an API key
    settled = Settled()
    with BedrockWireServer() as wire, IdleResetProxy(wire.port, idle_s=IDLE_S) as proxy:
        config = tmp_path / "strata.yaml"
        config.write_text(ROUTE % proxy.endpoint_url, encoding="utf-8")
        settings = Settings(home=tmp_path / "home", config=config, dev_key=TEST_KEY)  # type: ignore[call-arg]
        with serve(create_app(settings, settle_hooks=[settled])) as url:
            sdk = openai.OpenAI(base_url=url + "/v1", api_key=TEST_KEY, max_retries=0)
            bedrock = boto3.client(
                "bedrock-runtime",
                endpoint_url=url,
                region_name="us-east-1",
                config=Config(retries={"total_max_attempts": 1}),
            )

            def both() -> None:
                answer = sdk.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "hello"}]
                )
                assert answer.choices[0].message.content == "hello"
                reply = bedrock.converse(
                    modelId="chat", messages=[{"role": "user", "content": [{"text": "hello"}]}]
                )
                assert reply["output"]["message"]["content"][0]["text"] == "hello"

            async def burst(count: int) -> None:
                await asyncio.gather(*(asyncio.to_thread(both) for _ in range(count)))

            asyncio.run(burst(4))
            time.sleep(IDLE_S * 3)
            asyncio.run(burst(8))
            with httpx.Client(base_url=url, headers=AUTH) as admin:
                metrics = admin.get("/metrics")
    assert proxy.resets >= 1  # some of the burst drew a connection the proxy had closed
    assert wire.app.served == 24  # each request reached the fake once
    outcomes = [outcome for _, outcome in settled.wait(24)]
    assert len(outcomes) == 24
    assert {(o.error_class, o.attempts) for o in outcomes} == {(None, 1)}
    assert metrics.status_code == 200
    assert 'strata_breaker_state{target="bedrock:primary"} 0.0' in metrics.text
