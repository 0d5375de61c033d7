"""DirectBedrockProvider against the Bedrock-wire fake, held to what BedrockProvider (aiobotocore)
does with the same scripted reply: both providers call the same fake, and their answers, the
bodies the fake received and the errors raised must agree."""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import orjson
import pytest
from aiobotocore.credentials import AioCredentials
from aiohttp import web
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError
from botocore.parsers import EventStreamJSONParser, RestJSONParser
from botocore.retries.standard import RetryContext, StandardRetryConditions
from multidict import CIMultiDict

from gateway.canonical import ConverseRequest
from gateway.errors import StrataError, UpstreamDenied
from gateway.providers.base import BedrockOptions
from gateway.providers.bedrock import BedrockProvider
from gateway.providers.bedrock_direct import DirectBedrockProvider
from gateway.providers.bedrock_direct_signer import SIGNING_NAME, Signer
from gateway.providers.bedrock_direct_wire import (
    endpoint_for,
    operation_url,
    reply_error,
    signing_host,
    stream_event,
)
from gateway.providers.bedrock_errors import translate
from gateway.targets import Target
from gateway.wire.blobs import decode_body, load_shapes
from gateway.wire.eventstream import EventStreamDecoder, encode_event
from tests.fakes.bedrock_wire import (
    ERROR_STATUS,
    BedrockWireServer,
    Reply,
    fault_sequence,
    stream_exceptions,
)
from tests.gateway.conftest import BEDROCK_MODEL

ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
    "us.anthropic.claude-3-haiku-20240307-v1:0"
)
TARGET = Target("bedrock", BEDROCK_MODEL)
BOTH = (DirectBedrockProvider, BedrockProvider)


@asynccontextmanager
async def opened(cls: Any, url: str | None, **overrides: Any) -> AsyncIterator[Any]:
    settings: dict[str, Any] = {
        "region": "us-east-1",
        "endpoint_url": url,
        "connect_timeout": 5.0,
        "read_timeout": 30.0,
        "max_connections": 8,
    }
    settings.update(overrides)
    async with AsyncExitStack() as stack:
        yield await cls.open(stack, BedrockOptions(**settings))


def chat(*content: dict[str, Any], **extra: Any) -> ConverseRequest:
    blocks = list(content) or [{"text": "hi"}]
    return ConverseRequest.model_validate(
        {"messages": [{"role": "user", "content": blocks}], **extra}
    )


async def outcome(
    provider: Any, request: ConverseRequest, *, stream: bool, target: Target = TARGET
) -> tuple[Any, StrataError | None]:
    """What a caller sees: the response (or the events before any error) and the error."""
    events: list[Any] = []
    try:
        if not stream:
            return _steady((await provider.converse(target, request)).model_dump()), None
        async for event in provider.converse_stream(target, request):
            events.append(_steady(event))
    except StrataError as exc:
        return events, exc
    return events, None


def _steady(value: Any) -> Any:
    # latencyMs is the fake's own clock; everything else must match exactly.
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k != "latencyMs"}
    return value


def described(error: StrataError | None) -> tuple[Any, ...] | None:
    if error is None:
        return None
    return (
        type(error),
        error.status,
        error.bedrock_code,
        error.message,
        getattr(error, "retry_after", None),
        error.retryable,
        getattr(error, "retry_after_s", None),
    )


async def both(
    wire: BedrockWireServer,
    request: ConverseRequest,
    *,
    stream: bool,
    target: Target = TARGET,
    **settings: Any,
) -> list[tuple[Any, StrataError | None, int]]:
    """Each provider's outcome and how many calls the fake got for it."""
    results = []
    for cls in BOTH:
        before = len(wire.calls)
        async with opened(cls, wire.endpoint_url, **settings) as provider:
            result, error = await outcome(provider, request, stream=stream, target=target)
        results.append((result, error, len(wire.calls) - before))
    return results


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "stream"])
async def test_answers_match_aiobotocore(
    wire: BedrockWireServer, aws_credentials: None, stream: bool
) -> None:
    wire.handler = lambda r: Reply(
        chunks=["hel", "lo ", "there"], input_tokens=11, output_tokens=2, cache_read_tokens=4
    )
    request = chat(
        {"text": "hi"},
        system=[{"text": "be brief"}],
        inferenceConfig={"maxTokens": 20, "temperature": 0.5},
    )
    (direct, direct_error, _), (boto, boto_error, _) = await both(wire, request, stream=stream)
    assert direct_error is None and boto_error is None
    assert direct == boto
    assert direct  # not two empty answers
    sent_direct, sent_boto = wire.calls
    assert sent_direct.body == sent_boto.body
    assert sent_direct.model_id == sent_boto.model_id == BEDROCK_MODEL
    assert sent_direct.stream is sent_boto.stream is stream


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "stream"])
@pytest.mark.parametrize("code", sorted(ERROR_STATUS))
async def test_error_replies_match_aiobotocore(
    wire: BedrockWireServer, aws_credentials: None, code: str, stream: bool
) -> None:
    wire.handler = lambda r: Reply(error=code, error_message="internal detail xyz")
    (_, direct, direct_calls), (_, boto, boto_calls) = await both(wire, chat(), stream=stream)
    assert direct is not None
    # Same error, and the same retry decision marked on it for the pipeline to act on.
    assert described(direct) == described(boto)
    # Each transport makes exactly one attempt: retries are the pipeline's (issue 8).
    assert direct_calls == boto_calls == 1
    # Upstream words reach the caller only for its own request's faults.
    assert ("internal detail xyz" in direct.message) == (direct.status in (400, 404))


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (429, {"x-amzn-errortype": "ThrottlingException", "retry-after": "7"}, b"{}"),
        (503, {"x-amzn-errortype": "ServiceUnavailableException:http://x/"}, b'{"message":"m"}'),
        (502, {}, b"<html>bad gateway</html>"),
        (400, {}, b'{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}'),
        (404, {}, b'{"code":"ResourceNotFoundException","Message":"no such model"}'),
        (424, {"x-amzn-errortype": "ModelErrorException"}, b'{"message":"model broke"}'),
        (400, {"x-amzn-errortype": "SomethingNewException"}, b'{"message":"new"}'),
        (429, {"x-amzn-errortype": "ModelNotReadyException"}, b'{"message":"warming"}'),
        (504, {}, b""),
    ],
)
async def test_reply_parsing_matches_botocore(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    """Replies the fake cannot produce, read by botocore's own parser, ``translate`` and
    "standard" retry rules."""
    from aiobotocore.session import get_session

    operation = (await get_session().get_service_model("bedrock-runtime")).operation_model(
        "Converse"
    )
    parsed = RestJSONParser().parse(
        {"status_code": status, "headers": headers, "body": body}, operation.output_shape
    )
    expected = translate(ClientError(parsed, "Converse"))  # type: ignore[arg-type]
    botocore_retries = StandardRetryConditions(max_attempts=3).is_retryable(
        RetryContext(
            attempt_number=1,
            operation_model=operation,
            parsed_response=parsed,
            http_response=AWSResponse("http://x/", status, headers, None),
        )
    )
    error = reply_error(status, CIMultiDict(headers), body)
    assert described(error) == described(expected)
    assert error.retryable == botocore_retries


@pytest.mark.parametrize("member", sorted(stream_exceptions()))
async def test_in_stream_exceptions_match_aiobotocore(
    wire: BedrockWireServer, aws_credentials: None, member: str
) -> None:
    code = member[:1].upper() + member[1:]
    wire.handler = lambda r: Reply(
        chunks=["a", "b", "c"],
        stream_error=code,
        stream_error_after=3,
        error_message="detail from the model",
    )
    (direct_events, direct, _), (boto_events, boto, _) = await both(wire, chat(), stream=True)
    assert direct is not None
    assert described(direct) == described(boto)
    assert direct_events == boto_events
    assert [next(iter(e)) for e in direct_events] == ["messageStart"] + ["contentBlockDelta"] * 2


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "stream"])
async def test_one_attempt_then_the_next_call_succeeds(
    wire: BedrockWireServer, aws_credentials: None, stream: bool
) -> None:
    wire.handler = fault_sequence(["ThrottlingException", None])
    async with opened(DirectBedrockProvider, wire.endpoint_url) as provider:
        _, error = await outcome(provider, chat({"text": "echo me"}), stream=stream)
        assert error is not None and error.retryable
        assert len(wire.calls) == 1  # no retry inside the transport
        result, error = await outcome(provider, chat({"text": "echo me"}), stream=stream)
    assert error is None
    text = (
        "".join(e["contentBlockDelta"]["delta"]["text"] for e in result if "contentBlockDelta" in e)
        if stream
        else result["output"]["message"]["content"][0]["text"]
    )
    assert text == "echo me"


async def test_arn_model_id_reaches_bedrock_intact(
    wire: BedrockWireServer, aws_credentials: None
) -> None:
    async with opened(DirectBedrockProvider, wire.endpoint_url) as provider:
        for stream in (False, True):
            _, error = await outcome(provider, chat(), stream=stream, target=Target("bedrock", ARN))
            assert error is None
    assert [c.model_id for c in wire.calls] == [ARN, ARN]


async def test_blob_members_are_encoded_as_botocore_encodes_them(
    wire: BedrockWireServer, aws_credentials: None
) -> None:
    png = bytes(range(256)) * 3
    request = chat(
        {"text": "what is this?"},
        {"image": {"format": "png", "source": {"bytes": png}}},
        {"document": {"format": "txt", "name": "notes", "source": {"bytes": b"plain\x00text"}}},
        {
            "toolResult": {
                "toolUseId": "t1",
                # Text where botocore wants bytes: it encodes the UTF-8 of it.
                "content": [{"image": {"format": "gif", "source": {"bytes": "GIF89a"}}}],
            }
        },
    )
    (_, direct, _), (_, boto, _) = await both(wire, request, stream=False)
    assert direct is None and boto is None
    sent_direct, sent_boto = wire.calls
    assert sent_direct.body == sent_boto.body
    content = sent_direct.body["messages"][0]["content"]
    assert base64.b64decode(content[1]["image"]["source"]["bytes"]) == png
    tool_image = content[3]["toolResult"]["content"][0]["image"]["source"]["bytes"]
    assert base64.b64decode(tool_image) == b"GIF89a"
    # The caller's request is left as it was, ready for a fallback target.
    assert request.messages[0].content[1].model_extra == {
        "image": {"format": "png", "source": {"bytes": png}}
    }


async def test_response_blobs_decode_as_botocore_parses_them() -> None:
    from aiobotocore.session import get_session

    model = await get_session().get_service_model("bedrock-runtime")
    shapes = load_shapes(model)
    secret = base64.b64encode(b"\x01redacted\xff").decode()
    body = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"redactedContent": secret}},
                    {"image": {"format": "png", "source": {"bytes": secret}}},
                    {"text": "done"},
                ],
            }
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
        "metrics": {"latencyMs": 5},
    }
    raw = orjson.dumps(body)
    output_shape = model.operation_model("Converse").output_shape
    expected = RestJSONParser().parse(
        {"body": raw, "headers": {}, "status_code": 200}, output_shape
    )
    expected.pop("ResponseMetadata")
    assert decode_body(orjson.loads(raw), shapes.response_blobs) == expected

    delta = {"contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": secret}}}
    frame = encode_event("contentBlockDelta", orjson.dumps(delta))
    (message,) = EventStreamDecoder().feed(frame)
    buffer = EventStreamBuffer()
    buffer.add_data(frame)
    stream_shape = model.operation_model("ConverseStream").output_shape.members["stream"]  # type: ignore[union-attr]
    (event,) = buffer
    expected_event = EventStreamJSONParser().parse(event.to_response_dict(), stream_shape)
    assert stream_event(message, shapes) == expected_event
    assert expected_event["contentBlockDelta"]["delta"]["reasoningContent"] == {
        "redactedContent": b"\x01redacted\xff"
    }


class _Captured(Exception):
    def __init__(self, request: AWSRequest) -> None:
        super().__init__("captured")
        self.request = request


def _boto3_request(endpoint_url: str | None, model_id: str) -> AWSRequest:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token="session-token",
        config=Config(signature_version="v4", retries={"total_max_attempts": 1}),
    )

    def capture(request: AWSRequest, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Captured) as info:
        client.converse(
            modelId=model_id,
            messages=[{"role": "user", "content": [{"text": "sign me"}]}],
            inferenceConfig={"maxTokens": 9},
        )
    return info.value.request


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> datetime.datetime:
    now = datetime.datetime(2026, 11, 28, 12, 34, 56)
    # The one clock botocore's SigV4Auth reads, for boto3's client and for ours alike.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now)
    return now


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize("endpoint_url", [None, "http://127.0.0.1:8080"], ids=["aws", "local"])
@pytest.mark.parametrize("model_id", [BEDROCK_MODEL, ARN], ids=["model", "arn"])
async def test_signature_equals_boto3s(
    frozen_clock: datetime.datetime, endpoint_url: str | None, model_id: str
) -> None:
    boto = _boto3_request(endpoint_url, model_id)
    endpoint = endpoint_for("us-east-1", endpoint_url)
    url, _ = operation_url(endpoint, model_id, "converse")
    assert url == boto.url
    signer = Signer(
        AioCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token"),
        "us-east-1",
    )
    ours = await signer.headers(url, signing_host(endpoint), boto.body)
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "Content-Type"):
        assert ours[name] == _text(boto.headers[name]), name
    assert "20261128/us-east-1/bedrock/aws4_request" in ours["Authorization"]


async def test_one_signer_signs_each_day_with_that_days_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signer keeps the derived signing key per day: the second day's signature must come
    from the second day's key, and each must be what a fresh SigV4Auth computes."""
    signer = Signer(AioCredentials("AKIDEXAMPLE", "secret-example"), "us-east-1")
    url, _ = operation_url("http://127.0.0.1:8080", BEDROCK_MODEL, "converse")
    for now in (
        datetime.datetime(2026, 11, 28, 23, 59, 59),
        datetime.datetime(2026, 11, 28, 23, 59, 59),
        datetime.datetime(2026, 11, 29, 0, 0, 1),
    ):
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, n=now, **k: n)
        ours = await signer.headers(url, "127.0.0.1:8080", b'{"messages":[]}')
        fresh = AWSRequest(
            "POST",
            url,
            {"Host": "127.0.0.1:8080", "Content-Type": "application/json"},
            b'{"messages":[]}',
        )
        botocore.auth.SigV4Auth(
            ReadOnlyCredentials("AKIDEXAMPLE", "secret-example", None), SIGNING_NAME, "us-east-1"
        ).add_auth(fresh)
        assert ours["Authorization"] == fresh.headers["Authorization"], now
        assert now.strftime("%Y%m%d") in ours["Authorization"]


@asynccontextmanager
async def recorder() -> AsyncIterator[tuple[str, list[web.Request | Any]]]:
    """A loopback endpoint keeping each request exactly as it arrived (raw path, headers,
    body bytes) and answering a minimal Converse reply."""
    seen: list[Any] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.raw_path, dict(request.headers), await request.read()))
        reply = {
            "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        }
        return web.json_response(reply)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_what_arrives_is_what_was_signed(
    aws_credentials: None, frozen_clock: datetime.datetime
) -> None:
    async with recorder() as (url, seen), opened(DirectBedrockProvider, url) as provider:
        await provider.converse(Target("bedrock", ARN), chat())
    ((raw_path, headers, body),) = seen
    assert raw_path == f"/model/{ARN.replace(':', '%3A').replace('/', '%2F')}/converse"
    # Verify as Bedrock does: rebuild the request from the wire and sign it again.
    again = AWSRequest(
        "POST",
        f"http://{headers['Host']}{raw_path}",
        {k: headers[k] for k in ("Content-Type", "X-Amz-Date")},
        body,
    )
    auth = botocore.auth.SigV4Auth(
        ReadOnlyCredentials("AKIDEXAMPLE", "secret-example", None), SIGNING_NAME, "us-east-1"
    )
    auth.add_auth(again)
    assert headers["Authorization"] == again.headers["Authorization"]


# In debug mode aiohttp warns about a response left for the garbage collector to release.
@pytest.mark.filterwarnings("error::ResourceWarning")
async def test_abandoned_stream_gives_its_connection_back(
    wire: BedrockWireServer, aws_credentials: None
) -> None:
    asyncio.get_running_loop().set_debug(True)
    # Far more than aiohttp buffers unread (128 KiB): the answer cannot finish, and so release
    # the connection by itself, while the stream is left unread.
    wire.handler = lambda r: Reply(chunks=[f"{i:>1000} " for i in range(500)])
    async with opened(DirectBedrockProvider, wire.endpoint_url, max_connections=1) as provider:
        stream = provider.converse_stream(TARGET, chat())
        first = await anext(stream)
        assert "messageStart" in first
        await stream.aclose()
        # One pooled connection: this call waits forever if the stream still holds it.
        wire.handler = lambda r: Reply(text="next")
        response = await asyncio.wait_for(provider.converse(TARGET, chat()), timeout=60)
    assert response.text() == "next"


async def test_no_credentials_is_upstream_denied(wire: BedrockWireServer) -> None:
    results = await both(wire, chat(), stream=False)
    for _, error, calls in results:
        assert isinstance(error, UpstreamDenied)
        assert error.message == "the gateway has no AWS credentials for the bedrock provider"
        assert calls == 0
    assert described(results[0][1]) == described(results[1][1])


@pytest.fixture
def short_lived_credentials(tmp_path: Path) -> None:
    """A credential_process in the AWS config (the standard chain) that hands out new keys on
    each run, expiring inside botocore's mandatory refresh window, so every use refreshes."""
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=2)
    counter = tmp_path / "count"
    script = tmp_path / "creds.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}\n"
        'printf \'{"Version":1,"AccessKeyId":"AKID%s","SecretAccessKey":"s",'
        f'"SessionToken":"t%s","Expiration":"{expires:%Y-%m-%dT%H:%M:%SZ}"}}\' $n $n\n'
    )
    script.chmod(0o755)
    Path(os.environ["AWS_CONFIG_FILE"]).write_text(f"[default]\ncredential_process = {script}\n")


async def test_refreshable_credentials_refresh(
    wire: BedrockWireServer, short_lived_credentials: None
) -> None:
    async with opened(DirectBedrockProvider, wire.endpoint_url) as provider:
        await provider.converse(TARGET, chat())
        await provider.converse(TARGET, chat())
    keys = [c.headers["authorization"].split("Credential=")[1].split("/")[0] for c in wire.calls]
    tokens = [c.headers["x-amz-security-token"] for c in wire.calls]
    assert len(set(keys)) == 2 and all(k.startswith("AKID") for k in keys)
    assert len(set(tokens)) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "stream"])
async def test_connection_refused_matches_aiobotocore(aws_credentials: None, stream: bool) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    errors = []
    for cls in BOTH:
        async with opened(cls, url) as provider:
            errors.append((await outcome(provider, chat(), stream=stream))[1])
    assert errors[0] is not None and errors[0].status == 503
    assert described(errors[0]) == described(errors[1])


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "stream"])
async def test_read_timeout_matches_aiobotocore(
    wire: BedrockWireServer, aws_credentials: None, stream: bool
) -> None:
    wire.handler = lambda r: Reply(text="late", latency_s=1.0)
    (_, direct, _), (_, boto, _) = await both(wire, chat(), stream=stream, read_timeout=0.2)
    assert direct is not None and direct.status == 504
    assert described(direct) == described(boto)


async def test_ready_until_closed(wire: BedrockWireServer, aws_credentials: None) -> None:
    async with opened(DirectBedrockProvider, wire.endpoint_url) as provider:
        assert provider.ready()
    assert not provider.ready()
