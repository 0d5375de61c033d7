"""``strata.yaml``: aliases → targets, and how to reach each provider.

    aliases:
      default: local:builtin
      haiku: bedrock:anthropic.claude-3-haiku-20240307-v1:0
      tuned: [variant:support-v2, bedrock:anthropic.claude-3-haiku-20240307-v1:0]
    bedrock:
      region: us-east-1
      endpoint_url: http://127.0.0.1:9000     # optional
    local:
      bases:
        builtin: {path: builtin, adapters: {upper: ./adapters/upper}}

A list of targets is an ordered fallback chain; the first one is tried first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from gateway.config_local import check_local_bases
from gateway.errors import ConfigError, InvalidRequest
from gateway.settings import Settings
from gateway.targets import Target, parse_target

BUILTIN = "builtin"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BedrockSection(_Strict):
    region: str | None = None
    endpoint_url: str | None = None


class LocalBase(_Strict):
    path: str = BUILTIN
    adapters: dict[str, str] = Field(default_factory=dict)


class LocalSection(_Strict):
    bases: dict[str, LocalBase] = Field(default_factory=dict)


class GatewayConfig(_Strict):
    aliases: dict[str, list[Target]] = Field(default_factory=dict)
    bedrock: BedrockSection = Field(default_factory=BedrockSection)
    local: LocalSection = Field(default_factory=LocalSection)
    # Filled by load_config: whether ``default`` was added rather than written in the file (it
    # is then loaded lazily, on first use), and the local targets that cannot be served.
    _implied_default: bool = PrivateAttr(default=False)
    _unavailable: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def implied_default(self) -> bool:
        return self._implied_default

    @property
    def unavailable(self) -> dict[str, str]:
        return self._unavailable

    @field_validator("aliases", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> dict[str, list[Target]]:
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of alias name to target or list of targets")
        out: dict[str, list[Target]] = {}
        for name, raw in value.items():
            items = raw if isinstance(raw, list) else [raw]
            if not items or not all(isinstance(i, str) for i in items):
                raise ValueError(f"{name}: each target must be a string")
            try:
                out[str(name)] = [parse_target(i) for i in items]
            except InvalidRequest as exc:
                raise ValueError(f"{name}: {exc.message}") from None
        return out


def load_config(settings: Settings) -> GatewayConfig:
    """Read ``settings.config`` (if any) and fill in the embedded defaults."""
    config = _read(settings.config) if settings.config else GatewayConfig()
    bases = config.local.bases
    bases.setdefault(BUILTIN, LocalBase(path=BUILTIN))
    if settings.local_model:
        bases.setdefault("local", LocalBase(path=settings.local_model))
    if "default" not in config.aliases:
        base = "local" if settings.local_model else BUILTIN
        config.aliases["default"] = [Target("local", base)]
        config._implied_default = settings.config is not None
    for alias, targets in config.aliases.items():
        for target in targets:
            if target.kind == "local":
                _check_local(settings.config, alias, target, bases)
    config._unavailable = check_local_bases(settings.config, bases)
    return config


def _check_local(
    path: Path | None, alias: str, target: Target, bases: dict[str, LocalBase]
) -> None:
    where = f"{path}: aliases.{alias}" if path else f"aliases.{alias}"
    base = bases.get(target.model)
    if base is None:
        raise ConfigError(
            f"{where}: local base {target.model!r} is not defined under "
            f"local.bases (known: {', '.join(sorted(bases))})"
        )
    if target.adapter and target.adapter not in base.adapters:
        raise ConfigError(
            f"{where}: adapter {target.adapter!r} is not defined under "
            f"local.bases.{target.model}.adapters"
        )


def _read(path: Path) -> GatewayConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    try:
        return GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{path}: {key}: {reason}") from None
