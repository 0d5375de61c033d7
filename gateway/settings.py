"""Process settings from ``STRATA_*`` environment variables (nothing is read at import).

Each field's description is its documentation: ``strata serve --help`` lists them all, and a
test checks the README names every one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRATA_", extra="ignore")

    home: Path = Field(
        default=Path(".strata"),
        description="state directory (dev key, variants); relative to the working directory",
    )
    config: Path | None = Field(default=None, description="a strata.yaml: aliases and providers")
    host: str = Field(default="127.0.0.1", description="address to bind")
    port: int = Field(default=8080, ge=1, le=65535, description="port to listen on")

    dev_key: str | None = Field(
        default=None, description="the API key to accept (default: generated into HOME/dev-key)"
    )
    # Only an explicit setting turns auth off, and the gateway says so loudly at start.
    auth_disabled: bool = Field(
        default=False, description="1 accepts every request without a key (logged loudly)"
    )

    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="largest request body, in bytes"
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="seconds a client has to send a request's headers"
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="seconds a client has to send a request's body"
    )
    max_waiting_connections: int = Field(
        default=512, ge=1, description="connections allowed open with no request yet"
    )
    local_model: str | None = Field(
        default=None, description="a Hugging Face folder to serve instead of the built-in model"
    )
    aws_region: str = Field(default="us-east-1", description="AWS region for Bedrock")
    bedrock_endpoint_url: str | None = Field(
        default=None, description="Bedrock runtime endpoint (default: the region's)"
    )
    bedrock_connect_timeout_s: float = Field(default=5.0, description="Bedrock connect timeout")
    bedrock_read_timeout_s: float = Field(default=120.0, description="Bedrock read timeout")
    bedrock_max_connections: int = Field(default=256, description="Bedrock connection pool size")
    # Below the idle timeout of AWS endpoints and load balancers (60 s); behind a proxy that
    # closes sooner, set it below that proxy's. A connection closed anyway is detected before
    # reuse, or its unanswered request resent once (gateway/providers/bedrock_direct_pool.py).
    bedrock_keepalive_s: float = Field(
        default=12.0, gt=0, description="seconds an idle Bedrock connection is kept for reuse"
    )
    # "direct": our lean client (botocore credentials + SigV4Auth, aiohttp, orjson), about a third
    # of aiobotocore's CPU per call (bench/README.md); "aiobotocore": the aiobotocore client.
    # "aioboto3", this transport's name before aioboto3 was dropped, is accepted as an alias.
    bedrock_transport: Literal["direct", "aiobotocore"] = Field(
        default="direct", description="direct (lean aiohttp client) or aiobotocore"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")

    # Accounting (gateway/accounting): keys, ledger, budgets, rate limits.
    # postgresql://… shares keys and the ledger between replicas; unset: SQLite in ``home``.
    database_url: str | None = Field(
        default=None, description="postgresql://… for keys and the ledger (default: SQLite in HOME)"
    )
    # redis://… shares rate limits and budget counters between replicas; unset: per process.
    redis_url: str | None = Field(
        default=None, description="redis://… for shared rate limits and budgets (else per process)"
    )
    redis_prefix: str = Field(default="strata:", description="prefix of every Redis key")
    # Generous: under CPU starvation the event loop reads a prompt reply late, and a timeout
    # there would apply the on_redis_error policy to a healthy Redis. A stopped Redis (refused
    # connection) is seen at once whatever this is.
    redis_timeout_s: float = Field(default=5.0, gt=0, description="Redis command timeout")
    # What a call gets while Redis is unreachable: "closed" refuses with 503, "open" serves it.
    budget_on_redis_error: Literal["open", "closed"] = Field(
        default="closed", description="budgeted calls while Redis is down: closed (503) or open"
    )
    limits_on_redis_error: Literal["open", "closed"] = Field(
        default="open", description="rate-limited calls while Redis is down: open or closed"
    )
    # Output tokens reserved against a budget when a request names no max_tokens.
    reserve_default_max_tokens: int = Field(
        default=4096, ge=1, description="output tokens reserved when a request names no max_tokens"
    )
    ledger_flush_interval_s: float = Field(
        default=0.2, gt=0, description="seconds between ledger batch writes"
    )
    ledger_batch_size: int = Field(default=500, ge=1, description="ledger records per batch")
    # How often each replica re-reads the key table (a revoked key stops within this).
    keys_refresh_s: float = Field(
        default=1.0, gt=0, description="seconds between re-reads of the key table"
    )

    # Experiments (gateway/experiments): each replica re-reads the store's revision this often,
    # so a promotion made through any replica is in force on every one within about this.
    experiments_refresh_s: float = Field(
        default=0.5, gt=0, le=1.0, description="seconds between checks for experiment changes"
    )

    # Response cache (gateway/cache), for aliases with a ``cache:`` section in strata.yaml.
    # "memory": per process (TTL + LRU within cache_memory_bytes); "redis": shared by replicas
    # through STRATA_REDIS_URL (values compressed, TTL per entry; a Redis fault is a miss).
    cache_backend: Literal["memory", "redis"] = Field(
        default="memory", description="response cache: memory (per process) or redis (shared)"
    )
    cache_memory_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="byte bound of the in-process cache"
    )

    # Several worker processes share the port (gateway/workers.py), each with its own providers
    # and clients; "auto" is one per core this process may run on. More than one needs
    # STRATA_REDIS_URL (rate limits and budgets must be shared). strata.yaml ``server:`` too.
    workers: int = Field(
        default=1, ge=1, description="worker processes sharing the port (auto: one per core)"
    )
    # SIGTERM: stop accepting, let requests and streams in flight finish, flush, exit; past
    # this bound exit anyway, logging how many requests were cut (gateway/drain.py).
    drain_s: float = Field(
        default=30.0, gt=0, description="seconds SIGTERM waits for requests in flight, at most"
    )
    drain_delay_s: float = Field(
        default=0.0, ge=0, description="seconds to keep accepting after SIGTERM, /readyz 503"
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return usable_cores()
        return value

    @field_validator("bedrock_transport", mode="before")
    @classmethod
    def _transport_alias(cls, value: object) -> object:
        # Deployments configured before aioboto3 was replaced by aiobotocore keep working.
        return "aiobotocore" if value == "aioboto3" else value


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which a container's cpuset narrows)."""
    import os

    return len(os.sched_getaffinity(0))


def environment_help() -> str:
    """One line per setting: its environment variable, default and meaning."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = "" if field.default in (None, "") else f" (default {field.default})"
        lines.append(f"STRATA_{name.upper()}: {field.description}{default}")
    return "\n".join(lines)


@lru_cache
def get_settings() -> Settings:
    return Settings()
