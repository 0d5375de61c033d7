"""A gateway over the Bedrock-wire fake with a strata.yaml of the test's own, and a settle
hook that records every outcome (the test-visible side of the settle stage)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.app import create_app
from gateway.pipeline.admit import AdmitStage
from gateway.pipeline.call import Call, Outcome
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.harness import TEST_KEY, serve

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


@dataclass
class Settled:
    events: list[tuple[Call, Outcome]] = field(default_factory=list)

    async def __call__(self, call: Call, outcome: Outcome) -> None:
        self.events.append((call, outcome))

    def wait(self, count: int, timeout_s: float = 10.0) -> list[tuple[Call, Outcome]]:
        """The events once ``count`` have arrived (settle may run just after a response)."""
        deadline = time.monotonic() + timeout_s
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.events)


@contextmanager
def gateway(
    tmp_path: Path,
    wire: BedrockWireServer,
    aliases: str,
    settled: Settled | None = None,
    admit: list[AdmitStage] | None = None,
    **overrides: Any,
) -> Iterator[str]:
    """``aliases`` is the YAML body under ``aliases:``, indented by two spaces; ``overrides``
    are more ``Settings`` fields."""
    config = tmp_path / "strata.yaml"
    bedrock = f"bedrock:\n  region: us-east-1\n  endpoint_url: {wire.endpoint_url}\n"
    # A default of our own, so the built-in local model is not loaded (it takes seconds).
    default = "" if "  default:" in aliases else "  default: bedrock:default-model\n"
    config.write_text(f"aliases:\n{default}{aliases}\n{bedrock}", encoding="utf-8")
    settings = Settings(home=tmp_path / "home", config=config, dev_key=TEST_KEY, **overrides)
    hooks = [settled] if settled is not None else None
    app = create_app(settings, admit_stages=admit, settle_hooks=hooks)
    with serve(app) as url:
        yield url


def converse_body(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": [{"text": text}]}]}
