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

    @field_validator("bedrock_transport", mode="before")
    @classmethod
    def _transport_alias(cls, value: object) -> object:
        # Deployments configured before aioboto3 was replaced by aiobotocore keep working.
        return "aiobotocore" if value == "aioboto3" else value


@lru_cache
def get_settings() -> Settings:
    return Settings()
