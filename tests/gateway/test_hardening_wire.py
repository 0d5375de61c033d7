"""Issue 7, items 2, 4, 11, 12, 13, 14: hostile and malformed requests on both surfaces.

Every case runs against a served gateway over the Bedrock-wire fake, through real sockets.
"""

# Case tables keep one case per line, however long.
# ruff: noqa: E501
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.conftest import bedrock_settings
from tests.gateway.harness import TEST_KEY, serve

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
CHAT = "/v1/chat/completions"
CONVERSE = "/model/haiku/converse"
SECRET = "secret-prompt-text-0815"
USER = {"role": "user", "content": SECRET}


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "haiku", "messages": [USER], **extra}


def converse(**extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"text": SECRET}]}], **extra}


# Item 2: each of these gave 500 "internal error" and logged tracebacks quoting input_value.
MALFORMED = [
    (
        "image_url as a string",
        chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": SECRET}]}]),
        "messages.0.content.0.image_url",
    ),
    (
        "image url not a string",
        chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]),
        "messages.0.content.0.image_url",
    ),
    ("tool_choice function as a string", chat(tool_choice={"type": "function", "function": SECRET}), "tool_choice.function"),
    ("content part not an object", chat(messages=[{"role": "user", "content": [SECRET]}]), "messages.0.content.0"),
    ("text part without text", chat(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages.0.content.0.text"),
    ("empty stop sequence", chat(stop=[""]), "stop"),
    ("2501 stop sequences", chat(stop=["x"] * 2501), "stop"),
]  # fmt: skip


@pytest.fixture(scope="module")
def wire() -> Iterator[BedrockWireServer]:
    with BedrockWireServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, wire: BedrockWireServer) -> Iterator[str]:
    """One gateway for the module (they are read-only cases); its upstream client keeps the
    dummy credentials it found at start."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
        settings = bedrock_settings(tmp_path_factory.mktemp("wire"), wire)
        with serve(create_app(settings)) as url:
            yield url


@pytest.mark.parametrize(("name", "body", "param"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_openai_input_is_400_and_keeps_the_connection(
    gateway: str, caplog: pytest.LogCaptureFixture, name: str, body: dict[str, Any], param: str
) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=gateway, headers=AUTH) as client:
        r = client.post(CHAT, json=body)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param
        assert SECRET not in r.text
        # The same keep-alive connection serves the next request (a 500 used to reset it).
        assert client.post(CHAT, json=chat()).status_code == 200
        assert client.post(CHAT, json=chat()).http_version == "HTTP/1.1"
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert "input_value" not in text and SECRET not in text, record.getMessage()
        assert record.exc_info is None, f"a traceback was logged: {record.getMessage()}"


def test_seventeen_stop_sequences_are_fine(gateway: str, wire: BedrockWireServer) -> None:
    # Bedrock's model takes up to 2,500; 16 was our own invention.
    r = httpx.post(gateway + CHAT, headers=AUTH, json=chat(stop=[f"s{i}" for i in range(17)]))
    assert r.status_code == 200, r.text
    assert len(wire.calls[-1].body["inferenceConfig"]["stopSequences"]) == 17


# Item 14: OpenAI's own server is strict about these types.
@pytest.mark.parametrize(
    ("field", "value"),
    [("stream", "yes"), ("max_tokens", "3"), ("max_tokens", 2.0), ("temperature", "0.5"),
     ("n", True), ("seed", "7"), ("top_p", [1])],
)  # fmt: skip
def test_lax_types_are_refused(gateway: str, field: str, value: Any) -> None:
    r = httpx.post(gateway + CHAT, headers=AUTH, json=chat(**{field: value}))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == field


def test_integers_are_fine_where_floats_are_expected(gateway: str) -> None:
    r = httpx.post(gateway + CHAT, headers=AUTH, json=chat(temperature=1, top_p=1))
    assert r.status_code == 200


# Items 13 and 14 on the Bedrock surface: the service model's limits and Bedrock's own rules.
BEDROCK_INVALID = [
    ("temperature above 1", converse(inferenceConfig={"temperature": 1.5}), "inferenceConfig.temperature"),
    ("maxTokens as text", converse(inferenceConfig={"maxTokens": "3"}), "inferenceConfig.maxTokens"),
    ("maxTokens as float", converse(inferenceConfig={"maxTokens": 2.5}), "inferenceConfig.maxTokens"),
    ("2501 stop sequences", converse(inferenceConfig={"stopSequences": ["x"] * 2501}), "inferenceConfig.stopSequences"),
    ("empty stop sequence", converse(inferenceConfig={"stopSequences": [""]}), "inferenceConfig.stopSequences.0"),
    ("assistant first", {"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, "start with a user message"),
    ("blank text", {"messages": [{"role": "user", "content": [{"text": "  "}]}]}, "messages.0.content.0 is blank"),
    ("blank system", converse(system=[{"text": ""}]), "system.0"),
    ("two members in a block", {"messages": [{"role": "user", "content": [{"text": "a", "toolUse": {}}]}]}, "messages.0.content.0"),
    ("unknown role", {"messages": [{"role": "system", "content": [{"text": "a"}]}]}, "messages.0.role"),
    ("unknown field", converse(inferenceConfg={}), "inferenceConfg"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "body", "param"), BEDROCK_INVALID, ids=[c[0] for c in BEDROCK_INVALID]
)
def test_bedrock_surface_follows_the_service_model(
    gateway: str, wire: BedrockWireServer, name: str, body: dict[str, Any], param: str
) -> None:
    before = len(wire.calls)
    r = httpx.post(gateway + CONVERSE, headers=AUTH, json=body)
    assert r.status_code == 400, r.text
    assert r.headers["x-amzn-errortype"].startswith("ValidationException")
    assert param in r.json()["message"]
    assert len(wire.calls) == before, "an invalid request reached the upstream"


def test_bedrock_surface_accepts_what_the_model_allows(
    gateway: str, wire: BedrockWireServer
) -> None:
    body = converse(
        inferenceConfig={"temperature": 1, "topP": 0.5, "maxTokens": 5, "stopSequences": ["x"] * 17}
    )
    r = httpx.post(gateway + CONVERSE, headers=AUTH, json=body)
    assert r.status_code == 200, r.text


# Item 11: no redirect built from the Host header, and nothing unauthenticated.
@pytest.mark.parametrize(
    ("method", "path"), [("POST", CHAT + "/"), ("GET", "/healthz/"), ("POST", CONVERSE + "/")]
)
def test_trailing_slash_is_a_plain_404(gateway: str, method: str, path: str) -> None:
    r = httpx.request(method, gateway + path, headers={"Host": "evil.example"}, json=chat())
    assert r.status_code == 404
    assert "location" not in r.headers
    assert "evil.example" not in r.text


# Item 12: 405 and OPTIONS, in each surface's own error shape; 401 names its scheme.
def test_405_on_the_bedrock_surface(gateway: str) -> None:
    r = httpx.get(gateway + CONVERSE, headers=AUTH)
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]
    assert r.headers["x-amzn-errortype"].startswith("UnknownOperationException")


def test_405_on_the_openai_surface(gateway: str) -> None:
    r = httpx.get(gateway + CHAT, headers=AUTH)
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", [CHAT, CONVERSE])
def test_options_says_which_methods(gateway: str, path: str) -> None:
    r = httpx.options(gateway + path)
    assert r.status_code == 204
    assert "POST" in r.headers["allow"]


@pytest.mark.parametrize("path", [CHAT, CONVERSE])
def test_401_carries_www_authenticate(gateway: str, path: str) -> None:
    r = httpx.post(gateway + path, json=chat())
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


# Item 4: explicitly disabled auth needs no header at all, and says so.
def test_auth_disabled_accepts_requests_without_a_header(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None, caplog: pytest.LogCaptureFixture
) -> None:
    settings = bedrock_settings(tmp_path, wire, auth_disabled=True)
    with serve(create_app(settings)) as url:
        assert httpx.post(url + CHAT, json=chat()).status_code == 200
        assert httpx.post(url + CONVERSE, json=converse()).status_code == 200
        assert httpx.get(url + "/readyz").json()["auth"] == "DISABLED"
    assert "AUTHENTICATION IS DISABLED" in caplog.text


def test_openai_temperature_over_one_to_a_bedrock_target_is_a_clear_400(
    gateway: str, wire: BedrockWireServer
) -> None:
    """Item 13: OpenAI's range is 0-2 and local models take it; Bedrock takes 0-1 and refuses
    more with a ValidationException, which reaches the caller as a 400 naming the field."""
    r = httpx.post(gateway + CHAT, headers=AUTH, json=chat(temperature=1.5))
    assert r.status_code == 400, r.text
    assert "temperature" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("seed", 7),
        ("response_format", {"type": "json_object"}),
        ("logprobs", True),
        ("frequency_penalty", 0.5),
        ("reasoning_effort", "high"),
    ],
)
def test_openai_options_converse_cannot_carry_are_refused_for_bedrock_targets(
    gateway: str, wire: BedrockWireServer, param: str, value: Any
) -> None:
    """Item 6: a caller asking for seeded, JSON-mode or log-prob answers must not silently get
    an answer without them; Bedrock's Converse has no such fields, so the gateway says so."""
    before = len(wire.calls)
    r = httpx.post(gateway + CHAT, headers=AUTH, json=chat(**{param: value}))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    r = httpx.post(gateway + CHAT, headers=AUTH, json=chat(stream=True, **{param: value}))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert len(wire.calls) == before  # refused before any upstream call
    neutral = httpx.post(gateway + CHAT, headers=AUTH, json=chat(logprobs=False, seed=None))
    assert neutral.status_code == 200, neutral.text


def test_an_unexpected_error_is_a_500_that_keeps_the_connection_and_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 2's other half: whatever still escapes our error tree is answered with a 500 that
    leaves the keep-alive connection usable, and is logged by type and code location only,
    without its message (which may quote request data) or a traceback."""
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from gateway import handlers

    async def boom(request: Request) -> Response:
        raise RuntimeError(f"failed on {SECRET}")

    async def fine(request: Request) -> Response:
        return Response(b"ok")

    app = FastAPI(redirect_slashes=False)
    handlers.install(app)
    app.router.routes.extend([Route("/v1/boom", boom), Route("/v1/fine", fine)])
    caplog.set_level(logging.DEBUG)
    with serve(app) as url, httpx.Client(base_url=url) as client:
        r = client.get("/v1/boom")
        assert r.status_code == 500
        assert r.json()["error"] == {
            "message": "internal error",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        assert client.get("/v1/fine").text == "ok"  # same connection, not reset
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == ["strata.errors"]
    assert "RuntimeError" in errors[0].getMessage() and "boom" in errors[0].getMessage()
    for record in caplog.records:
        assert SECRET not in record.getMessage() and record.exc_info is None


TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
TOOL_HISTORY = [
    {"role": "user", "content": "look it up"},
    {"role": "assistant", "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "t1", "content": "42"},
]  # fmt: skip


def test_tool_choice_none_keeps_tools_when_the_history_has_tool_blocks() -> None:
    """Item 7: Converse refuses toolUse / toolResult blocks without a toolConfig, so "none"
    keeps the specs and leaves toolChoice out (Converse has no "none")."""
    from gateway.wire.openai_request import parse_chat_request

    _, canonical = parse_chat_request(
        {"model": "m", "messages": TOOL_HISTORY, "tools": TOOLS, "tool_choice": "none"}
    )
    assert canonical.toolConfig is not None
    assert [t["toolSpec"]["name"] for t in canonical.toolConfig["tools"]] == ["lookup"]
    assert "toolChoice" not in canonical.toolConfig
    _, plain = parse_chat_request(
        {"model": "m", "messages": [USER], "tools": TOOLS, "tool_choice": "none"}
    )
    assert plain.toolConfig is None  # no tool history: the tools are simply not offered
