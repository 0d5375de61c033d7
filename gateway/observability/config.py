"""The ``metrics:``, ``access_log:`` and ``cloudwatch:`` sections of strata.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricsSection(_Strict):
    # /metrics without an admin key (a Prometheus scraper on a private network).
    public: bool = False
    # A tenant label on every series: off by default, one series per tenant can be a lot.
    tenant_label: bool = False


class AccessLogSection(_Strict):
    enabled: bool = True
    level: Literal["DEBUG", "INFO", "WARNING"] = "INFO"
    # A file to append JSON lines to; unset: the ``strata.access`` logger (stderr by default).
    path: str | None = None


class CloudWatchSection(_Strict):
    # "api": PutMetricData each period; "emf": Embedded Metric Format lines for the CloudWatch
    # agent or Lambda; "off": nothing.
    mode: Literal["off", "api", "emf"] = "off"
    namespace: str = Field(default="Strata", min_length=1, max_length=255)
    period_s: float = Field(default=60.0, gt=0)
    # Where EMF lines go; unset: stdout.
    path: str | None = None
    # mode api: the region (unset: bedrock.region, else STRATA_AWS_REGION) and endpoint.
    region: str | None = None
    endpoint_url: str | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `off` as false: `mode: off` must mean what it says.
        return "off" if value is False else value
