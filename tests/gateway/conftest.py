"""Gateways under test: one over the Bedrock-wire fake, one over the built-in local model."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters_local.serving.generation import InferenceEngine
from gateway.app import create_app
from gateway.providers.local import Loader
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.harness import TEST_KEY, serve
from tests.gateway.pipeline_harness import Settled

BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def wire() -> Iterator[BedrockWireServer]:
    with BedrockWireServer() as server:
        yield server


@pytest.fixture
def settled() -> Settled:
    """Every call's settled outcome, recorded by a settle hook (pass it to the gateway)."""
    return Settled()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # The gateway signs its upstream calls; the fake accepts any signature.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")


def bedrock_settings(tmp_path: Path, wire: BedrockWireServer, **overrides: object) -> Settings:
    config = write_config(
        tmp_path / "strata.yaml",
        f"""
aliases:
  default: bedrock:{BEDROCK_MODEL}
  haiku: bedrock:{BEDROCK_MODEL}
bedrock:
  region: us-east-1
  endpoint_url: {wire.endpoint_url}
""",
    )
    return Settings(home=tmp_path / "home", config=config, dev_key=TEST_KEY, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def bedrock_gateway(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> Iterator[str]:
    with serve(create_app(bedrock_settings(tmp_path, wire))) as url:
        yield url


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded default: no config, no AWS, the built-in model (loaded once per module)."""
    home = tmp_path_factory.mktemp("local-home")
    settings = Settings(home=home, dev_key=TEST_KEY)
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="session")
def builtin_engine() -> Iterator[InferenceEngine]:
    """The built-in model, loaded once for every test that needs real generation (~13 s)."""
    from adapters_local.serving.engine import load_engine

    engine = load_engine("builtin")
    yield engine
    engine.close()


class _Shared:
    """``engine`` for one gateway: everything passes through but ``close``, so a gateway
    shutting down leaves the session's engine to the next one."""

    def __init__(self, engine: InferenceEngine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def close(self) -> None:
        return None


def loader_of(engine: InferenceEngine) -> Loader:
    """A local loader that serves ``engine`` for any base (the tests' only base is builtin)."""

    def loader(path: str, adapters: Mapping[str, str]) -> InferenceEngine:
        return _Shared(engine)  # type: ignore[return-value]

    return loader
