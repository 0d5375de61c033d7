"""Acceptance 2: ``strata dashboards cloudwatch --apply`` and ``strata alarms apply`` create a
dashboard and alarms in moto (server mode) that reference only metrics the gateway emitted,
checked by name and exact dimensions against what a real run put there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import httpx
from typer.testing import CliRunner

from gateway.cli import _mount, app
from tests.gateway.harness import TEST_KEY
from tests.observability.conftest import gateway
from tests.observability.test_cloudwatch import NS, moto_url  # noqa: F401 (a fixture)

Key = tuple[str, str, frozenset[tuple[str, str]]]


def key(namespace: str, name: str, dims: list[dict[str, str]]) -> Key:
    return namespace, name, frozenset((d["Name"], d["Value"]) for d in dims)


def widget_keys(body: dict[str, Any]) -> list[Key]:
    out = []
    for w in body["widgets"]:
        for m in w["properties"]["metrics"]:
            flat = [x for x in m if not isinstance(x, dict)]
            ns, name, rest = flat[0], flat[1], flat[2:]
            dims = [{"Name": rest[i], "Value": rest[i + 1]} for i in range(0, len(rest), 2)]
            out.append(key(ns, name, dims))
    return out


def alarm_keys(alarm: dict[str, Any]) -> list[Key]:
    if alarm.get("MetricName"):
        return [key(alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"])]
    return [
        key(
            q["MetricStat"]["Metric"]["Namespace"],
            q["MetricStat"]["Metric"]["MetricName"],
            q["MetricStat"]["Metric"]["Dimensions"],
        )
        for q in alarm["Metrics"]
        if "MetricStat" in q
    ]


def test_dashboard_and_alarms_reference_only_emitted_metrics(
    tmp_path: Path,
    moto_url: str,  # noqa: F811
) -> None:
    extra = (
        f"cloudwatch:\n  mode: api\n  namespace: {NS}\n  period_s: 5\n  endpoint_url: {moto_url}\n"
    )
    with gateway(tmp_path, extra) as (url, _):
        # 20 calls at 50/50 by request: both arms serve unless chance is 2 in a million.
        models = ["chat", "default", *["exp"] * 20]
        for i, model in enumerate(models):
            r = httpx.post(
                f"{url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {TEST_KEY}"},
                json={"model": model, "messages": [{"role": "user", "content": f"q {i}"}]},
            )
            assert r.status_code == 200
    cw = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto_url)
    emitted = {
        key(m["Namespace"], m["MetricName"], m["Dimensions"])
        for m in cw.list_metrics(Namespace=NS)["Metrics"]
    }
    variants = {dict(k[2]).get("Variant") for k in emitted}
    assert {"a", "b"} <= variants  # both arms served
    _mount()
    runner = CliRunner()
    config = str(tmp_path / "strata.yaml")
    common = ["--config", config, "--region", "us-east-1", "--endpoint-url", moto_url]
    done = runner.invoke(app, ["dashboards", "cloudwatch", "--name", "Ops", "--apply", *common])
    assert done.exit_code == 0, done.output
    topic = "arn:aws:sns:us-east-1:123456789012:ops"
    done = runner.invoke(
        app, ["alarms", "apply", "--sns-topic", topic, "--monthly-budget-usd", "730", *common]
    )
    assert done.exit_code == 0, done.output
    body = json.loads(cw.get_dashboard(DashboardName="Ops")["DashboardBody"])
    referenced = widget_keys(body)
    titles = {w["properties"]["title"] for w in body["widgets"]}
    assert {"Cost (USD)", "Latency p50 / p99 (ms)", "Errors", "Requests per variant"} <= titles
    assert referenced and set(referenced) <= emitted, set(referenced) - emitted
    found = cw.describe_alarms(AlarmNamePrefix="strata")["MetricAlarms"]
    names = {a["AlarmName"] for a in found}
    for alias in ("chat", "exp", "default"):
        assert {
            f"strata-{alias}-error-rate",
            f"strata-{alias}-p99-latency",
            f"strata-{alias}-call-spike",
        } <= names
    assert "strata-spend-rate" in names
    for alarm in found:
        assert alarm["AlarmActions"] == [topic]
        keys = alarm_keys(alarm)
        assert keys and set(keys) <= emitted, (alarm["AlarmName"], set(keys) - emitted)
    spend = next(a for a in found if a["AlarmName"] == "strata-spend-rate")
    assert spend["Threshold"] == 1.0  # 730 USD a month is 1 USD an hour
