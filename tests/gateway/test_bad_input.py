"""Acceptance 5: bad input gets a clear 4xx, and nothing logged carries a key or a prompt."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.conftest import bedrock_settings
from tests.gateway.harness import TEST_KEY, serve

SECRET_PROMPT = "my-secret-prompt-4711"
LIMIT = 4096


@pytest.fixture
def gateway(tmp_path: Path, wire: BedrockWireServer, aws_credentials: None) -> Iterator[str]:
    with serve(create_app(bedrock_settings(tmp_path, wire, max_body_bytes=LIMIT))) as url:
        yield url


AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
CHAT = "/v1/chat/completions"
CONVERSE = "/model/haiku/converse"

OPENAI_CASES = [
    ("malformed JSON", b"{not json", 400, None),
    ("not an object", b"[1, 2]", 400, None),
    ("empty body", b"", 400, None),
    ("wrong type", b'{"model": "haiku", "messages": "hello"}', 400, "messages"),
    ("empty messages", b'{"model": "haiku", "messages": []}', 400, "messages"),
    ("missing messages", b'{"model": "haiku"}', 400, "messages"),
    (
        "max_tokens < 1",
        b'{"model": "haiku", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}',
        400,
        "max_tokens",
    ),
    (
        "unknown alias",
        b'{"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]}',
        404,
        "model",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "param"), OPENAI_CASES, ids=[c[0] for c in OPENAI_CASES]
)
def test_openai_surface_rejects(
    gateway: str, name: str, body: bytes, status: int, param: str | None
) -> None:
    r = httpx.post(gateway + CHAT, content=body, headers=AUTH)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["message"]
    assert error["param"] == param
    assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


def test_unknown_alias_lists_known_ones(gateway: str) -> None:
    r = httpx.post(
        gateway + CHAT,
        headers=AUTH,
        json={"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]},
    )
    assert "default" in r.json()["error"]["message"]
    assert "haiku" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{oops", 400),
        (b'{"messages": []}', 400),
        (b'{"messages": [{"role": "user", "content": "text"}]}', 400),
        (
            b'{"messages": [{"role": "user", "content": [{"text": "x"}]}],'
            b' "inferenceConfig": {"maxTokens": 0}}',
            400,
        ),
    ],
)
def test_bedrock_surface_rejects_with_bedrock_errors(
    gateway: str, body: bytes, status: int
) -> None:
    r = httpx.post(gateway + CONVERSE, content=body, headers=AUTH)
    assert r.status_code == status
    assert r.headers["x-amzn-errortype"].startswith("ValidationException")
    assert r.json()["message"]


@pytest.mark.parametrize("path", [CHAT, CONVERSE])
def test_oversized_body_is_413(gateway: str, path: str) -> None:
    big = b'{"model": "haiku", "messages": [{"role": "user", "content": "' + b"x" * LIMIT + b'"}]}'
    r = httpx.post(gateway + path, content=big, headers=AUTH)
    assert r.status_code == 413


def test_oversized_chunked_body_is_413(gateway: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    r = httpx.post(gateway + CHAT, content=chunks(), headers=AUTH)
    assert r.status_code == 413


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk-strata-nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
    ],
)
@pytest.mark.parametrize("path", [CHAT, CONVERSE])
def test_missing_or_wrong_key_is_401(gateway: str, headers: dict[str, str], path: str) -> None:
    r = httpx.post(
        gateway + path,
        headers=headers,
        json={"model": "haiku", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 401


def test_models_needs_a_key(gateway: str) -> None:
    assert httpx.get(gateway + "/v1/models").status_code == 401


def test_unknown_route_is_404_in_surface_shape(gateway: str) -> None:
    r = httpx.post(gateway + "/v1/nothing", headers=AUTH)
    assert r.status_code == 404 and "error" in r.json()


def test_nothing_logged_carries_key_or_prompt(
    gateway: str, wire: BedrockWireServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="strata")
    caplog.set_level(logging.INFO)
    body = {"model": "haiku", "messages": [{"role": "user", "content": SECRET_PROMPT}]}
    assert httpx.post(gateway + CHAT, headers=AUTH, json=body).status_code == 200
    httpx.post(gateway + CHAT, headers={"Authorization": f"Bearer {TEST_KEY}x"}, json=body)
    httpx.post(gateway + CHAT, headers=AUTH, json={**body, "model": "nope"})
    httpx.post(gateway + CHAT, headers=AUTH, json={**body, "max_tokens": -1})
    from tests.fakes.bedrock_wire import Reply

    wire.handler = lambda r: Reply(error="InternalServerException")
    assert httpx.post(gateway + CHAT, headers=AUTH, json=body).status_code == 502
    assert caplog.records, "expected the gateway to log something"
    for record in caplog.records:
        text = record.getMessage() + str(record.args or "")
        assert TEST_KEY not in text
        assert SECRET_PROMPT not in text
