"""A gateway on a loopback port in front of the fake Bedrock wire server that has served real
traffic from two tenants (known totals), and a headless Debian chromium to look at its dashboard.

Chromium and chromedriver come from apt (``.ci/install-chromium``, run here when they are
missing); selenium is given both paths, so its manager never tries to download anything.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY, serve

ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-micro-v1:0"
ADMIN = {"Authorization": f"Bearer {TEST_KEY}"}


def scripted(request: FakeRequest) -> Reply:
    """Usage grows with the question number; "fail" is refused for good (a 400, not retried)."""
    text = request.last_user_text
    if "fail" in text:
        return Reply(error="ValidationException")
    n = int(text.split()[-1])
    return Reply(
        chunks=["alpha ", "beta"],
        input_tokens=20 + 7 * n,
        output_tokens=5 + 3 * n,
        latency_s=0.002 * (n % 5),
    )


@dataclass
class Served:
    url: str
    keys: dict[str, str]  # tenant -> its key's secret
    key_ids: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)  # tenant -> calls made

    def auth(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}

    def usage(self, group_by: str = "tenant", **params: str) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.url}/admin/usage", params={"group_by": group_by, **params}, headers=ADMIN
        )
        r.raise_for_status()
        data: list[dict[str, Any]] = r.json()["data"]
        return data


def _config(tmp: Path, endpoint: str) -> Path:
    config = tmp / "strata.yaml"
    config.write_text(
        "aliases:\n"
        f"  default: bedrock:{HAIKU}\n"
        f"  chat:\n    targets: [bedrock:{HAIKU}]\n"
        f"  fast: bedrock:{NOVA}\n"
        f"  cached:\n    targets: [bedrock:{HAIKU}]\n    cache: {{ttl_s: 300}}\n"
        "  exp:\n    experiment:\n      sticky_by: request\n      variants:\n"
        f"        a: {{target: bedrock:{HAIKU}, weight: 60}}\n"
        f"        b: {{target: bedrock:{NOVA}, weight: 40}}\n"
        f"bedrock:\n  region: us-east-1\n  endpoint_url: {endpoint}\n"
    )
    return config


def _key(url: str, tenant: str, **limits: Any) -> tuple[str, str]:
    created = httpx.post(f"{url}/admin/keys", headers=ADMIN, json={"tenant": tenant, **limits})
    created.raise_for_status()
    body = created.json()
    # Replicas re-read the key table every second; wait until this one knows the key.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = httpx.get(f"{url}/v1/usage", headers={"Authorization": f"Bearer {body['key']}"})
        if seen.status_code == 200:
            return body["key"], body["id"]
        time.sleep(0.1)
    raise AssertionError(f"key for {tenant} never became active")


def _traffic(url: str, keys: dict[str, str]) -> dict[str, int]:
    acme = openai.OpenAI(base_url=f"{url}/v1", api_key=keys["acme"], max_retries=0)
    globex = openai.OpenAI(base_url=f"{url}/v1", api_key=keys["globex"], max_retries=0)
    n = 0

    def ask(client: openai.OpenAI, model: str, *, stream: bool = False, **extra: Any) -> None:
        nonlocal n
        n += 1
        messages: Any = [{"role": "user", "content": f"question {n}"}]
        if stream:
            for _ in client.chat.completions.create(model=model, messages=messages, stream=True):
                pass
        else:
            client.chat.completions.create(model=model, messages=messages, **extra)

    for _ in range(5):
        ask(acme, "chat")
    for _ in range(2):
        ask(acme, "fast", stream=True)
    for _ in range(2):
        with pytest.raises(openai.BadRequestError):
            acme.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "fail"}]
            )
    for _ in range(3):  # one miss, then two hits
        acme.chat.completions.create(
            model="cached", temperature=0, messages=[{"role": "user", "content": "question 4"}]
        )
    for _ in range(8):
        ask(globex, "exp")
    for _ in range(2):
        ask(globex, "fast")
    return {"acme": 12, "globex": 10}


@contextmanager
def gateway(tmp: Path) -> Iterator[str]:
    """A gateway with no traffic yet; yields its base URL."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret-example")
    try:
        with BedrockWireServer(scripted) as wire:
            config = _config(tmp, wire.endpoint_url)
            settings = Settings(home=tmp / "home", config=config, dev_key=TEST_KEY)  # type: ignore[call-arg]
            with serve(create_app(settings)) as url:
                yield url
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with gateway(tmp_path_factory.mktemp("dashboard")) as url:
        acme, acme_id = _key(url, "acme", budget_usd="1", name="acme-prod")
        globex, globex_id = _key(url, "globex", name="globex-batch")
        keys = {"acme": acme, "globex": globex}
        out = Served(url, keys, {"acme": acme_id, "globex": globex_id})
        out.calls = _traffic(url, keys)
        # The ledger commits every 0.2 s; wait until every call is in it.
        deadline = time.monotonic() + 30
        while sum(r["requests"] for r in out.usage()) < sum(out.calls.values()):
            assert time.monotonic() < deadline, "the ledger never caught up"
            time.sleep(0.1)
        yield out


@pytest.fixture(scope="session")
def chromium() -> tuple[Path, Path]:
    """The system chromium and chromedriver, installed now when missing; a failed install fails
    the test (never a skip)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        done = subprocess.run(
            [str(ROOT / ".ci" / "install-chromium")],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            pytest.fail(
                "the dashboard browser tests need Debian's chromium and chromium-driver; "
                f".ci/install-chromium exited {done.returncode}:\n{done.stdout[-2000:]}"
                f"\n{done.stderr[-2000:]}",
                pytrace=False,
            )
    return CHROMIUM, CHROMEDRIVER
