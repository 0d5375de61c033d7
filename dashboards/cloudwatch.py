"""CloudWatch dashboard body and alarms over the metrics the gateway's ``cloudwatch: {mode:
api}`` exporter sends (gateway/observability/cloudwatch.py): pure functions of the namespace
and the aliases in strata.yaml, applied by ``strata dashboards cloudwatch`` and ``strata alarms
apply``.

Alarm thresholds (each a CLI option): error rate over 5 % of calls in 5 minutes; p99 latency
over 10 s for 3 of 3 periods of 5 minutes; spend per hour above the monthly budget / 730 (an
hour's share); more than ``spike_per_min`` calls a minute (a sudden surge in usage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config import GatewayConfig

ALIAS_ONLY = ("Alias",)
FULL = ("Alias", "Target", "Variant")


@dataclass(frozen=True)
class Series:
    alias: str
    target: str = "-"
    variant: str = "-"

    def dims(self) -> list[dict[str, str]]:
        if self.variant == "-" and self.target == "-":
            return [{"Name": "Alias", "Value": self.alias}]
        return [
            {"Name": "Alias", "Value": self.alias},
            {"Name": "Target", "Value": self.target},
            {"Name": "Variant", "Value": self.variant},
        ]

    def widget_metric(self, namespace: str, name: str, **opts: Any) -> list[Any]:
        flat: list[Any] = [namespace, name]
        for d in self.dims():
            flat += [d["Name"], d["Value"]]
        return [*flat, opts] if opts else flat


def series(config: GatewayConfig) -> tuple[list[Series], list[Series]]:
    """(one series per alias, one per experiment arm with the arm's first target)."""
    aliases = [Series(name) for name in sorted(config.aliases)]
    arms = []
    for name, entry in sorted(config.aliases.items()):
        if entry.experiment is not None:
            for variant, section in sorted(entry.experiment.variants.items()):
                arms.append(Series(name, str(section.chain()[0]), variant))
    return aliases, arms


def _widget(title: str, metrics: list[list[Any]], region: str, stat: str, x: int, y: int) -> Any:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "metrics": metrics,
            "region": region,
            "stat": stat,
            "period": 60,
            "view": "timeSeries",
        },
    }


def dashboard_body(namespace: str, region: str, config: GatewayConfig) -> dict[str, Any]:
    aliases, arms = series(config)
    rows = [
        ("Cost (USD)", "CostUSD", "Sum", aliases),
        ("Requests", "Requests", "Sum", aliases),
        ("Errors", "Errors", "Sum", aliases),
        ("Input tokens", "InputTokens", "Sum", aliases),
        ("Output tokens", "OutputTokens", "Sum", aliases),
        ("Cache-read tokens", "CacheReadTokens", "Sum", aliases),
        ("Budget and rate-limit refusals", "Refusals", "Sum", aliases),
        ("Gateway overhead p50 (ms)", "Overhead", "p50", aliases),
    ]
    widgets = []
    latency = [
        s.widget_metric(namespace, "Latency", stat=q) for s in aliases for q in ("p50", "p99")
    ]
    widgets.append(_widget("Latency p50 / p99 (ms)", latency, region, "p99", 0, 0))
    for i, (title, name, stat, group) in enumerate(rows, start=1):
        metrics = [s.widget_metric(namespace, name) for s in group]
        widgets.append(_widget(title, metrics, region, stat, (i % 2) * 12, (i // 2) * 6))
    if arms:
        y = (len(rows) // 2 + 1) * 6
        for j, (title, name, stat) in enumerate(
            (
                ("Requests per variant", "Requests", "Sum"),
                ("Cost per variant", "CostUSD", "Sum"),
                ("Latency p99 per variant", "Latency", "p99"),
                ("Errors per variant", "Errors", "Sum"),
            )
        ):
            metrics = [s.widget_metric(namespace, name) for s in arms]
            widgets.append(_widget(title, metrics, region, stat, (j % 2) * 12, y + (j // 2) * 6))
    return {"widgets": widgets}


@dataclass(frozen=True)
class Thresholds:
    error_rate: float = 0.05
    p99_ms: float = 10_000.0
    monthly_budget_usd: float | None = None
    spike_per_min: float = 1000.0


def _stat(namespace: str, name: str, s: Series, stat: str, period: int) -> dict[str, Any]:
    return {
        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": s.dims()},
        "Period": period,
        "Stat": stat,
    }


def alarms(
    namespace: str, config: GatewayConfig, t: Thresholds, sns_topic: str | None, prefix: str
) -> list[dict[str, Any]]:
    """``put_metric_alarm`` arguments, per alias, plus one gateway-wide spend alarm."""
    actions = {"AlarmActions": [sns_topic], "OKActions": [sns_topic]} if sns_topic else {}
    aliases, _ = series(config)
    out: list[dict[str, Any]] = []
    for s in aliases:
        out.append(
            {
                "AlarmName": f"{prefix}-{s.alias}-error-rate",
                "AlarmDescription": f"errors over {t.error_rate:.0%} of {s.alias} calls in 5 min",
                "Metrics": [
                    {
                        "Id": "errors",
                        "MetricStat": _stat(namespace, "Errors", s, "Sum", 300),
                        "ReturnData": False,
                    },
                    {
                        "Id": "calls",
                        "MetricStat": _stat(namespace, "Requests", s, "Sum", 300),
                        "ReturnData": False,
                    },
                    {
                        "Id": "rate",
                        "Expression": "errors / calls",
                        "Label": "error rate",
                        "ReturnData": True,
                    },
                ],
                "ComparisonOperator": "GreaterThanThreshold",
                "Threshold": t.error_rate,
                "EvaluationPeriods": 1,
                "TreatMissingData": "notBreaching",
                **actions,
            }
        )
        out.append(
            {
                "AlarmName": f"{prefix}-{s.alias}-p99-latency",
                "AlarmDescription": f"p99 latency of {s.alias} over {t.p99_ms:.0f} ms for 15 min",
                "Namespace": namespace,
                "MetricName": "Latency",
                "Dimensions": s.dims(),
                "ExtendedStatistic": "p99",
                "Period": 300,
                "EvaluationPeriods": 3,
                "Threshold": t.p99_ms,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                **actions,
            }
        )
        out.append(
            {
                "AlarmName": f"{prefix}-{s.alias}-call-spike",
                "AlarmDescription": f"more than {t.spike_per_min:.0f} calls a minute to {s.alias}",
                "Namespace": namespace,
                "MetricName": "Requests",
                "Dimensions": s.dims(),
                "Statistic": "Sum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": t.spike_per_min,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                **actions,
            }
        )
    if t.monthly_budget_usd is not None and aliases:
        hourly = t.monthly_budget_usd / 730
        metrics: list[dict[str, Any]] = [
            {
                "Id": f"c{i}",
                "MetricStat": _stat(namespace, "CostUSD", s, "Sum", 3600),
                "ReturnData": False,
            }
            for i, s in enumerate(aliases)
        ]
        ids = ", ".join(m["Id"] for m in metrics)
        metrics.append(
            {
                "Id": "spend",
                "Expression": f"SUM([{ids}])",
                "Label": "USD per hour",
                "ReturnData": True,
            }
        )
        out.append(
            {
                "AlarmName": f"{prefix}-spend-rate",
                "AlarmDescription": (
                    f"spend over {hourly:.4f} USD an hour, the hourly share of a "
                    f"{t.monthly_budget_usd:g} USD monthly budget"
                ),
                "Metrics": metrics,
                "ComparisonOperator": "GreaterThanThreshold",
                "Threshold": hourly,
                "EvaluationPeriods": 1,
                "TreatMissingData": "notBreaching",
                **actions,
            }
        )
    return out
