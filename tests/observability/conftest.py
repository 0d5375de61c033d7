"""A gateway on a loopback port in front of the fake Bedrock wire server, with an observability
config of the test's choosing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.pipeline.settle import SettleHook
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer, Handler, echo_handler
from tests.gateway.harness import TEST_KEY, serve

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", TEST_KEY)


@contextmanager
def gateway(
    tmp_path: Path,
    extra: str = "",
    handler: Handler = echo_handler,
    settle_hooks: list[SettleHook] | None = None,
    apps: list[FastAPI] | None = None,
) -> Iterator[tuple[str, BedrockWireServer]]:
    """``extra`` is appended to strata.yaml (observability sections). Aliases: ``chat`` (one
    target, retries on), ``default`` (the same model, so no local model loads) and ``exp``
    (a 50/50 experiment over the same model)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    with BedrockWireServer(handler) as wire:
        config = tmp_path / "strata.yaml"
        config.write_text(
            "aliases:\n"
            f"  default: bedrock:{MODEL}\n"
            f"  chat:\n    targets: [bedrock:{MODEL}]\n"
            "    retry: {max_attempts: 3, base_ms: 1, cap_ms: 2, budget_ratio: 1.0}\n"
            "  exp:\n    experiment:\n      sticky_by: request\n      variants:\n"
            f"        a: {{target: bedrock:{MODEL}, weight: 50}}\n"
            f"        b: {{target: bedrock:{MODEL}, weight: 50}}\n"
            f"bedrock:\n  region: us-east-1\n  endpoint_url: {wire.endpoint_url}\n{extra}"
        )
        settings = Settings(home=tmp_path / "home", config=config, dev_key=TEST_KEY)  # type: ignore[call-arg]
        app = create_app(settings, settle_hooks=settle_hooks)
        if apps is not None:
            apps.append(app)  # for a test that reads app.state after the run
        with serve(app) as url:
            yield url, wire
