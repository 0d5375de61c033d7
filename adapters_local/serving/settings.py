"""Engine settings read from the environment when a model loads (never at import).

``STRATA_LOCAL_THREADS``: torch CPU threads for decoding (unset: measured at load).
``STRATA_LOCAL_MAX_BATCH``: rows that decode together at most.
Arguments to ``load_engine`` take precedence over both.
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters_local.models.loading import ModelError


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRATA_LOCAL_", extra="ignore")

    threads: int | None = Field(default=None, ge=1)
    max_batch: int = Field(default=16, ge=1)


def engine_settings() -> EngineSettings:
    """The settings, or a one-line ``ModelError`` naming each bad variable."""
    try:
        return EngineSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"STRATA_LOCAL_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ModelError(problems) from None
