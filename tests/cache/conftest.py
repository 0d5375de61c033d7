"""A gateway with cached routes over the Bedrock-wire fake, on either cache backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.accounting.keys import KeyAdmin
from gateway.accounting.store import Database
from tests.accounting.conftest import REDIS_URL, redis_namespace
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.conftest import aws_credentials, wire
from tests.gateway.pipeline_harness import Settled, gateway

__all__ = ["aws_credentials", "wire"]  # fixtures shared with tests/gateway

ALIASES = """\
  chat:
    targets: ["bedrock:base-model"]
    cache: {ttl_s: 60}
  warm:
    targets: ["bedrock:base-model"]
    cache: {ttl_s: 60, only_temperature_zero: false}
  plain: "bedrock:base-model"
  support:
    experiment:
      sticky_by: user
      variants:
        control: {target: "bedrock:base-model", weight: 50}
        tuned: {target: "bedrock:tuned-model", weight: 50}
    cache: {ttl_s: 60}
"""


def chat(text: str, model: str = "chat", temperature: float | None = 0, **extra: Any) -> dict:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if temperature is not None:
        body["temperature"] = temperature
    return {**body, **extra}


def converse(text: str, temperature: float | None = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": [{"text": text}]}]}
    if temperature is not None:
        body["inferenceConfig"] = {"temperature": temperature}
    return body


@contextmanager
def cached_gateway(
    tmp_path: Path,
    wire: BedrockWireServer,
    backend: str,
    settled: Settled | None = None,
    prefix: str | None = None,
    redis_url: str = REDIS_URL,
    aliases: str = ALIASES,
) -> Iterator[str]:
    extra: dict[str, Any] = {"cache_backend": backend}
    if backend == "redis":
        extra.update(redis_url=redis_url, redis_prefix=prefix)
    with gateway(tmp_path, wire, aliases, settled, **extra) as url:
        yield url


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_namespace() as p:
        yield p


def tenant_key(tmp_path: Path, tenant: str) -> str:
    """An API key of ``tenant`` in the gateway's key table (created before it starts)."""
    db = Database(None, tmp_path / "home")
    db.migrate()
    key, _ = KeyAdmin(db).create(tenant)
    return key


def status_and_cache(r: httpx.Response) -> tuple[int, str | None]:
    return r.status_code, r.headers.get("x-strata-cache")
