"""Acceptance 1 (API mode) against moto's CloudWatch in server mode: after a run, the metrics
per alias and variant sum to the calls made, in a handful of PutMetricData calls; a failing
CloudWatch leaves the requests unaffected."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
import pytest
from fastapi import FastAPI
from moto.server import ThreadedMotoServer

from gateway.observability.cloudwatch import CloudWatchExporter
from gateway.state import GatewayState
from tests.accounting.conftest import free_port
from tests.fakes.bedrock_wire import FakeRequest, Reply
from tests.gateway.harness import TEST_KEY
from tests.observability.conftest import MODEL, gateway

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
N = 1000  # acceptance 1 asks for 1,000 (about 10 s more than 400 at load 12)
NS = "StrataTest"


@pytest.fixture
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto keeps its backends per process, not per server: start each test from nothing.
    httpx.post(f"{url}/moto-api/reset").raise_for_status()
    yield url
    server.stop()


def scripted(request: FakeRequest) -> Reply:
    if "fail" in request.last_user_text:
        return Reply(error="ValidationException")
    n = int(request.last_user_text.split()[-1])
    return Reply(text="ok", input_tokens=5 + n % 7, output_tokens=2 + n % 3)


def run(url: str) -> list[int]:
    """N calls at concurrency 16: every 10th to ``exp``, every 25th refused by the upstream."""

    async def main() -> list[int]:
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as client:

            async def one(i: int) -> int:
                model = "exp" if i % 10 == 0 else "chat"
                text = "fail" if i % 25 == 1 else f"q {i}"
                async with limit:
                    r = await client.post(
                        "/v1/chat/completions",
                        json={"model": model, "messages": [{"role": "user", "content": text}]},
                    )
                return r.status_code

            return await asyncio.gather(*(one(i) for i in range(N)))

    return asyncio.run(main())


def exporter(app: FastAPI) -> CloudWatchExporter:
    state: GatewayState = app.state.strata
    assert state.observability is not None and state.observability.cloudwatch is not None
    return state.observability.cloudwatch


def stat(cw: object, metric: str, dims: dict[str, str]) -> float:
    now = datetime.now(UTC)
    out = cw.get_metric_statistics(  # type: ignore[attr-defined]
        Namespace=NS,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
        Period=60,
        Statistics=["Sum"],
    )
    return float(sum(p["Sum"] for p in out["Datapoints"]))


def test_cloudwatch_totals_per_alias_and_variant(tmp_path: Path, moto_url: str) -> None:
    extra = (
        f"cloudwatch:\n  mode: api\n  namespace: {NS}\n  period_s: 1\n  endpoint_url: {moto_url}\n"
    )
    apps: list[FastAPI] = []
    with gateway(tmp_path, extra, handler=scripted, apps=apps) as (url, wire):
        started = datetime.now(UTC)
        statuses = run(url)
        served = list(wire.calls)
    elapsed_s = (datetime.now(UTC) - started).total_seconds()
    exp = exporter(apps[0])
    fails = sum(1 for i in range(N) if i % 25 == 1)
    assert statuses.count(400) == fails and statuses.count(200) == N - fails
    assert len(served) == N
    cw = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto_url)
    target = f"bedrock:{MODEL}"
    # Full dimension sets: moto matches a query's dimensions as a subset, CloudWatch exactly;
    # with all three named both give the one series.
    chat = {"Alias": "chat", "Target": target, "Variant": "-"}
    chat_n = sum(1 for i in range(N) if i % 10)
    assert stat(cw, "Requests", chat) == chat_n
    assert stat(cw, "Errors", chat) == fails
    per_arm = {
        v: stat(cw, "Requests", {"Alias": "exp", "Target": target, "Variant": v})
        for v in ("a", "b")
    }
    assert sum(per_arm.values()) == N // 10 and all(per_arm.values())
    ok = [i for i in range(N) if i % 25 != 1]
    inputs = sum(5 + i % 7 for i in ok)
    outputs = sum(2 + i % 3 for i in ok)
    series = [chat, *({"Alias": "exp", "Target": target, "Variant": v} for v in ("a", "b"))]
    assert sum(stat(cw, "InputTokens", d) for d in series) == inputs
    assert sum(stat(cw, "OutputTokens", d) for d in series) == outputs
    # The per-alias series exists too (what the alarms and dashboard read).
    listed = cw.list_metrics(Namespace=NS, MetricName="Requests")["Metrics"]
    assert {"Alias"} in [{d["Name"] for d in m["Dimensions"]} for m in listed]
    # GetMetricData agrees, and latency went out as values + counts (one sample per call).
    now = datetime.now(UTC)
    data = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "lat",
                "MetricStat": {
                    "Metric": {
                        "Namespace": NS,
                        "MetricName": "Latency",
                        "Dimensions": [{"Name": k, "Value": v} for k, v in chat.items()],
                    },
                    "Period": 60,
                    "Stat": "SampleCount",
                },
            }
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
    )
    assert sum(data["MetricDataResults"][0]["Values"]) == chat_n
    # A handful of calls per period, never one per request.
    periods = int(elapsed_s) + 2
    assert exp.failures == 0 and exp.dropped_datums == 0
    assert exp.calls <= periods, (exp.calls, periods)
    print(
        f"\n{N} requests in {elapsed_s:.1f} s: {exp.calls} PutMetricData calls, "
        f"{exp.sent_datums} datums"
    )


def test_a_failing_cloudwatch_leaves_requests_alone(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    extra = (
        f"cloudwatch:\n  mode: api\n  namespace: {NS}\n  period_s: 0.2\n  endpoint_url: {dead}\n"
    )
    apps: list[FastAPI] = []
    with gateway(tmp_path, extra, handler=scripted, apps=apps) as (url, _):
        for i in range(30):
            r = httpx.post(
                f"{url}/v1/chat/completions",
                headers=AUTH,
                json={"model": "chat", "messages": [{"role": "user", "content": f"q {i}"}]},
            )
            assert r.status_code == 200
    exp = exporter(apps[0])
    assert exp.failures >= 1 and exp.sent_datums == 0
