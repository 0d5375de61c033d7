"""``strata dashboards cloudwatch`` and ``strata alarms apply``: print or apply the CloudWatch
dashboard and alarms of dashboards/cloudwatch.py for the aliases in strata.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

dashboards_app = typer.Typer(no_args_is_help=True)
alarms_app = typer.Typer(no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="strata.yaml (aliases)")]
EndpointOpt = Annotated[str | None, typer.Option(help="CloudWatch endpoint (tests, proxies)")]


def _context(config: Path | None, region: str | None) -> tuple[object, str, str]:
    from gateway.config import load_config
    from gateway.settings import Settings

    settings = Settings(config=config) if config else Settings()
    cfg = load_config(settings)
    return (
        cfg,
        cfg.cloudwatch.namespace,
        region or cfg.cloudwatch.region or cfg.bedrock.region or settings.aws_region,
    )


@dashboards_app.command("cloudwatch")
def cloudwatch_dashboard(
    name: Annotated[str, typer.Option(help="dashboard name")] = "Strata",
    apply: Annotated[bool, typer.Option(help="create/replace it (else print the body)")] = False,
    config: ConfigOpt = None,
    region: Annotated[str | None, typer.Option(help="AWS region")] = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Cost, tokens, latency p50/p99, errors, refusals and per-variant widgets."""
    import boto3

    from dashboards.cloudwatch import dashboard_body
    from gateway.config import GatewayConfig

    cfg, namespace, where = _context(config, region)
    assert isinstance(cfg, GatewayConfig)
    body = dashboard_body(namespace, where, cfg)
    if not apply:
        typer.echo(json.dumps(body, indent=2))
        return
    cw = boto3.client("cloudwatch", region_name=where, endpoint_url=endpoint_url)
    cw.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    typer.echo(f"dashboard {name!r} applied in {where}: {len(body['widgets'])} widgets")


@alarms_app.command("apply")
def apply_alarms(
    sns_topic: Annotated[str | None, typer.Option(help="SNS topic ARN to notify")] = None,
    error_rate: Annotated[float, typer.Option(help="error share that alarms")] = 0.05,
    p99_ms: Annotated[float, typer.Option(help="p99 latency that alarms, ms")] = 10_000.0,
    monthly_budget_usd: Annotated[
        float | None, typer.Option(help="alarm when an hour costs more than budget / 730")
    ] = None,
    spike_per_min: Annotated[float, typer.Option(help="calls a minute that alarm")] = 1000.0,
    prefix: Annotated[str, typer.Option(help="alarm name prefix")] = "strata",
    config: ConfigOpt = None,
    region: Annotated[str | None, typer.Option(help="AWS region")] = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Error rate, p99 latency and call-spike alarms per alias; spend rate vs a budget."""
    import boto3

    from dashboards.cloudwatch import Thresholds, alarms
    from gateway.config import GatewayConfig

    cfg, namespace, where = _context(config, region)
    assert isinstance(cfg, GatewayConfig)
    thresholds = Thresholds(error_rate, p99_ms, monthly_budget_usd, spike_per_min)
    cw = boto3.client("cloudwatch", region_name=where, endpoint_url=endpoint_url)
    for alarm in alarms(namespace, cfg, thresholds, sns_topic, prefix):
        cw.put_metric_alarm(**alarm)
        typer.echo(f"alarm {alarm['AlarmName']}: {alarm['AlarmDescription']}")
