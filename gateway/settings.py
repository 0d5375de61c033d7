"""Process settings from ``STRATA_*`` environment variables (nothing is read at import)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRATA_", extra="ignore")

    home: Path = Path(".strata")
    config: Path | None = None  # strata.yaml; aliases, providers
    host: str = "127.0.0.1"
    port: int = 8080

    dev_key: str | None = None
    # Only an explicit setting turns auth off, and the gateway says so loudly at start.
    auth_disabled: bool = False

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    local_model: str | None = None  # a Hugging Face folder; unset means the built-in model
    aws_region: str = "us-east-1"
    bedrock_endpoint_url: str | None = None
    bedrock_connect_timeout_s: float = 5.0
    bedrock_read_timeout_s: float = 120.0
    bedrock_max_connections: int = 256
    # "direct": our lean client (botocore credentials + SigV4Auth, aiohttp, orjson), about a third
    # of aiobotocore's CPU per call (bench/README.md); "aiobotocore": the aiobotocore client.
    # "aioboto3", this transport's name before aioboto3 was dropped, is accepted as an alias.
    bedrock_transport: Literal["direct", "aiobotocore"] = "direct"
    log_level: str = "INFO"

    # Accounting (gateway/accounting): keys, ledger, budgets, rate limits.
    # postgresql://… shares keys and the ledger between replicas; unset: SQLite in ``home``.
    database_url: str | None = None
    # redis://… shares rate limits and budget counters between replicas; unset: per process.
    redis_url: str | None = None
    redis_prefix: str = "strata:"
    # Generous: under CPU starvation the event loop reads a prompt reply late, and a timeout
    # there would apply the on_redis_error policy to a healthy Redis. A stopped Redis (refused
    # connection) is seen at once whatever this is.
    redis_timeout_s: float = Field(default=5.0, gt=0)
    # What a call gets while Redis is unreachable: "closed" refuses with 503, "open" serves it.
    budget_on_redis_error: Literal["open", "closed"] = "closed"
    limits_on_redis_error: Literal["open", "closed"] = "open"
    # Output tokens reserved against a budget when a request names no max_tokens.
    reserve_default_max_tokens: int = Field(default=4096, ge=1)
    ledger_flush_interval_s: float = Field(default=0.2, gt=0)
    ledger_batch_size: int = Field(default=500, ge=1)
    # How often each replica re-reads the key table (a revoked key stops within this).
    keys_refresh_s: float = Field(default=1.0, gt=0)

    # Response cache (gateway/cache), for aliases with a ``cache:`` section in strata.yaml.
    # "memory": per process (TTL + LRU within cache_memory_bytes); "redis": shared by replicas
    # through STRATA_REDIS_URL (values compressed, TTL per entry; a Redis fault is a miss).
    cache_backend: Literal["memory", "redis"] = "memory"
    cache_memory_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)

    @field_validator("bedrock_transport", mode="before")
    @classmethod
    def _transport_alias(cls, value: object) -> object:
        # Deployments configured before aioboto3 was replaced by aiobotocore keep working.
        return "aiobotocore" if value == "aioboto3" else value


@lru_cache
def get_settings() -> Settings:
    return Settings()
