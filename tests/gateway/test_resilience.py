"""Retries, the retry budget, breakers and deadlines, under faults the Bedrock-wire fake
injects, through a running gateway (acceptance 1-3 of issue 8)."""

from __future__ import annotations

import asyncio
import math
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from gateway.auth import Principal
from gateway.canonical import ConverseRequest
from gateway.config import load_config
from gateway.errors import StrataError
from gateway.pipeline.attempt import AttemptStage
from gateway.pipeline.call import Call, new_request_id
from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.route import RouteStage
from gateway.pipeline.settle import Settle
from gateway.providers.base import BedrockOptions
from gateway.providers.bedrock_direct import DirectBedrockProvider
from gateway.settings import Settings
from tests.fakes.bedrock_faults import by_model, delayed, hard_down, seeded_faults
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply, echo_handler
from tests.gateway.pipeline_harness import AUTH, converse_body, gateway

REQUESTS = 1000
CONCURRENCY = 32
RESERVE = 10  # RetryBudget's default reserve, per 10 s window
WINDOW_S = 10.0


async def _load(tmp_path: Path, wire: BedrockWireServer, alias: str) -> tuple[int, float]:
    """1000 calls at concurrency 32 through the pipeline itself (the real direct Bedrock
    transport, over loopback to the fake), without the HTTP layers in front of it, which would
    only make the test slower: the budget lives in the attempt stage. Returns (ok, seconds)."""
    path = tmp_path / "strata.yaml"
    path.write_text(f"aliases:\n{FLAKY}\n", encoding="utf-8")
    config = load_config(Settings(home=tmp_path, config=path))
    async with AsyncExitStack() as stack:
        options = BedrockOptions(region="us-east-1", endpoint_url=wire.endpoint_url)
        provider = await DirectBedrockProvider.open(stack, options)
        pipeline = Pipeline(
            route=RouteStage(config.routes()),
            attempt=AttemptStage({"bedrock": provider}),
            settle=Settle(),
        )
        who = Principal(tenant="t", key_id="k")
        ok = 0
        pending = iter(range(REQUESTS))

        async def worker() -> None:
            nonlocal ok
            for i in pending:
                text = f"{alias}-{i}"
                request = ConverseRequest.model_validate(converse_body(text))
                call = Call(new_request_id(), who, "bedrock", alias, request)
                try:
                    response = await pipeline.converse(call)
                except StrataError:
                    continue
                assert response.text() == text
                ok += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return ok, time.monotonic() - started


def _by_prompt(request: FakeRequest) -> str:
    return request.last_user_text


FLAKY = """\
  generous:
    targets: [bedrock:primary, bedrock:secondary]
    retry: {max_attempts: 3, base_ms: 1, cap_ms: 20, budget_ratio: 0.6}
  stingy:
    targets: [bedrock:primary, bedrock:secondary]
    retry: {max_attempts: 3, base_ms: 1, cap_ms: 20, budget_ratio: 0.1}
"""


@pytest.mark.parametrize(("alias", "ratio"), [("generous", 0.6), ("stingy", 0.1)])
async def test_thirty_percent_throttling_within_the_retry_budget(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None, alias: str, ratio: float
) -> None:
    # Seeded per prompt: the n-th call for a given request always gets the same draw, so the
    # outcome does not depend on how 32 concurrent calls interleave.
    wire.handler = seeded_faults(0.3, seed=8, key=_by_prompt)
    ok, seconds = await _load(tmp_path, wire, alias)
    attempts = sum(wire.counts.values())
    # Retries are at most ratio x first attempts plus the budget's reserve in each window the
    # run touched.
    bound = (1 + ratio) * REQUESTS + RESERVE * (math.ceil(seconds / WINDOW_S) + 1)
    print(f"{alias}: {ok}/{REQUESTS} ok, {attempts} attempts, {seconds:.1f} s, bound {bound:.0f}")
    assert attempts <= bound
    if ratio == 0.6:
        assert ok >= 0.999 * REQUESTS
    else:
        # The budget, not the success rate, is the point here: most throttled calls get no
        # retry, so about 30 % minus what 0.1 of the load can retry fail.
        assert ok < 0.9 * REQUESTS


BREAKER = """\
  hd:
    targets: [bedrock:primary, bedrock:secondary]
    retry: {max_attempts: 2, base_ms: 1, cap_ms: 5}
    breaker: {failures: 3, window_s: 60, cooldown_s: 3}
"""


def test_hard_down_primary_opens_the_breaker_then_one_probe_closes_it(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    wire.handler = by_model({"primary": hard_down()})
    with gateway(tmp_path, wire, BREAKER) as url, httpx.Client(base_url=url, headers=AUTH) as c:

        def ask() -> httpx.Response:
            r = c.post("/model/hd/converse", json=converse_body("hi"))
            assert r.status_code == 200, r.text
            return r

        assert ask().headers["x-strata-target"] == "bedrock:secondary"  # primary x2, fallback
        ask()  # the third consecutive failure opens the breaker
        opened = time.monotonic()
        assert wire.counts["primary"] == 3
        for _ in range(5):
            r = ask()
            assert r.headers["x-strata-target"] == "bedrock:secondary"
            assert r.headers["x-strata-attempts"] == "1"  # straight to the fallback
        assert time.monotonic() - opened < 3, "the machine is too slow for this cool-down"
        assert wire.counts["primary"] == 3  # no calls while open

        time.sleep(max(0.0, opened + 3.2 - time.monotonic()))
        ask()  # the probe, which fails: open again
        reopened = time.monotonic()
        assert wire.counts["primary"] == 4
        ask()
        ask()
        assert wire.counts["primary"] == 4

        wire.handler = echo_handler  # the primary recovers
        time.sleep(max(0.0, reopened + 3.2 - time.monotonic()))
        assert ask().headers["x-strata-target"] == "bedrock:primary"  # the probe succeeds
        assert ask().headers["x-strata-target"] == "bedrock:primary"  # and it is closed
        assert wire.counts["primary"] == 6


DEADLINES = """\
  slow:
    targets: [bedrock:slow]
    timeout_ms: 300
  open_ended: bedrock:slow
"""


@pytest.mark.parametrize(
    ("alias", "headers"),
    [("slow", {}), ("open_ended", {"x-strata-timeout-ms": "300"})],
    ids=["route-timeout", "caller-header"],
)
@pytest.mark.parametrize("surface", ["bedrock", "openai"])
def test_deadline_gives_504_before_the_upstream_answers(
    tmp_path: Path,
    wire: BedrockWireServer,
    aws_credentials: None,
    alias: str,
    headers: dict[str, str],
    surface: str,
) -> None:
    # Throttled fast first (so a retry is tempting), then answers only after 1 s.
    calls = iter(range(1000))
    wire.handler = lambda r: (
        Reply(error="ThrottlingException") if next(calls) == 0 else delayed(1.0)(r)
    )
    with gateway(tmp_path, wire, DEADLINES) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        started = time.monotonic()
        if surface == "bedrock":
            r = c.post(f"/model/{alias}/converse", json=converse_body("hi"), headers=headers)
        else:
            body = {"model": alias, "messages": [{"role": "user", "content": "hi"}]}
            r = c.post("/v1/chat/completions", json=body, headers=headers)
        elapsed = time.monotonic() - started
    assert r.status_code == 504, r.text
    assert r.headers["x-strata-request-id"]
    # Loose on purpose (a loaded machine): well before the upstream's 1 s answer.
    assert elapsed < 0.9
    assert [c.arrived for c in wire.calls]  # it did try
    assert all(c.arrived < started + 0.3 for c in wire.calls)  # never after the deadline


def test_retry_after_is_waited_for(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    calls = iter(range(1000))
    wire.handler = lambda r: (
        Reply(error="ThrottlingException", retry_after="1") if next(calls) == 0 else echo_handler(r)
    )
    with gateway(tmp_path, wire, "  a: bedrock:m\n") as url:
        r = httpx.post(f"{url}/model/a/converse", json=converse_body("hi"), headers=AUTH)
    assert r.status_code == 200
    first, second = wire.calls
    assert second.arrived - first.arrived >= 1.0  # not sooner than the upstream asked


def test_retry_after_longer_than_the_deadline_is_not_waited_for(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    wire.handler = lambda r: Reply(error="ThrottlingException", retry_after="1")
    aliases = "  a:\n    targets: [bedrock:m]\n    timeout_ms: 500\n"
    with gateway(tmp_path, wire, aliases) as url:
        r = httpx.post(f"{url}/model/a/converse", json=converse_body("hi"), headers=AUTH)
    # The upstream's own answer, at once: no attempt could have finished in time.
    assert r.status_code == 429
    assert r.headers["x-strata-attempts"] == "1"
    assert len(wire.calls) == 1


def test_non_retryable_errors_are_not_retried(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    aliases = "  a: [bedrock:m, bedrock:other]\n"
    with gateway(tmp_path, wire, aliases) as url:
        for code, status in [
            ("ValidationException", 400),
            ("ModelErrorException", 200),
            ("AccessDeniedException", 200),
        ]:
            wire.reset(by_model({"m": lambda r, code=code: Reply(error=code)}))
            r = httpx.post(f"{url}/model/a/converse", json=converse_body("hi"), headers=AUTH)
            assert r.status_code == status, (code, r.text)
            # Never retried on the same target; the latter two fall back (fallback_on).
            assert wire.counts["m"] == 1, code
            assert wire.counts["other"] == (0 if status == 400 else 1), code


def test_open_breaker_on_the_only_target_answers_503_with_retry_after(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    wire.handler = hard_down()
    aliases = (
        "  solo:\n    targets: [bedrock:m]\n    retry: {max_attempts: 1}\n"
        "    breaker: {failures: 1, cooldown_s: 30}\n"
    )
    with gateway(tmp_path, wire, aliases) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        first = c.post("/model/solo/converse", json=converse_body("hi"))
        second = c.post("/model/solo/converse", json=converse_body("hi"))
    assert first.status_code == second.status_code == 503
    assert "circuit open" in second.json()["message"]
    assert 29 <= int(second.headers["retry-after"]) <= 30
    assert second.headers["x-strata-attempts"] == "0"
    assert wire.counts["m"] == 1
