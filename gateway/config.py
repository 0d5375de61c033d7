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

A list of targets is an ordered fallback chain; the first one is tried first. An alias may
also be a mapping, with a policy of its own or an experiment instead of targets:

    aliases:
      haiku:
        targets: [bedrock:anthropic.claude-3-haiku-20240307-v1:0,
                  bedrock@us-west-2:anthropic.claude-3-haiku-20240307-v1:0]
        timeout_ms: 20000                    # the whole call, retries and fallbacks included
        retry: {max_attempts: 3, base_ms: 50, cap_ms: 2000, budget_ratio: 0.2}
        breaker: {failures: 5, window_s: 30, cooldown_s: 30}
        fallback_on: [throttled, unavailable, timeout, server_error, not_found, denied]
        cache: {ttl_s: 300, max_bytes: 1048576, only_temperature_zero: true}
      support:
        experiment:
          sticky_by: user                    # key | user | request
          salt: "2026-12"                    # change it to reshuffle everyone
          variants:
            control: {target: "bedrock:anthropic.claude-3-haiku-20240307-v1:0", weight: 90}
            tuned:                           # a chain of its own: falls back if the variant fails
              targets: [variant:support-v2, "bedrock:anthropic.claude-3-haiku-20240307-v1:0"]
              weight: 10
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.accounting.prices import PriceOverride
from gateway.cache.route_config import PromptCacheSection, SemanticCacheSection, check_prompt_cache
from gateway.config_local import (
    CompositionSection,
    adapter_names,
    add_compositions,
    check_local_bases,
)
from gateway.errors import ConfigError, InvalidRequest
from gateway.experiments.graders.config import GraderSection
from gateway.observability.config import AccessLogSection, CloudWatchSection, MetricsSection
from gateway.pipeline.experiments import Arm, Experiment, StickyBy
from gateway.pipeline.policy import (
    DEFAULT_FALLBACK_ON,
    ERROR_CLASSES,
    BreakerPolicy,
    CachePolicy,
    RetryPolicy,
    RoutePolicy,
)
from gateway.pipeline.route import Route
from gateway.settings import Settings, usable_cores
from gateway.targets import Target, parse_target

BUILTIN = "builtin"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BedrockSection(_Strict):
    region: str | None = None
    endpoint_url: str | None = None


class ServerSection(_Strict):
    """``server:``: how ``strata serve`` runs; a ``STRATA_*`` variable or flag overrides it."""

    workers: Annotated[int, Field(ge=1)] | Literal["auto"] | None = None
    drain_s: float | None = Field(default=None, gt=0)
    drain_delay_s: float | None = Field(default=None, ge=0)


class LocalBase(_Strict):
    path: str = BUILTIN
    adapters: dict[str, str] = Field(default_factory=dict)


class LocalSection(_Strict):
    bases: dict[str, LocalBase] = Field(default_factory=dict)


def _targets(value: Any) -> list[Target]:
    items = value if isinstance(value, list) else [value]
    if all(isinstance(i, Target) for i in items):
        return list(items)
    if not items or not all(isinstance(i, str) for i in items):
        raise ValueError("each target must be a string")
    try:
        return [parse_target(i) for i in items]
    except InvalidRequest as exc:
        raise ValueError(exc.message) from None


class RetrySection(_Strict):
    max_attempts: int = Field(default=RetryPolicy.max_attempts, ge=1, le=10)
    base_ms: float = Field(default=RetryPolicy.base_ms, ge=0)
    cap_ms: float = Field(default=RetryPolicy.cap_ms, ge=0)
    budget_ratio: float = Field(default=RetryPolicy.budget_ratio, ge=0, le=10)


class BreakerSection(_Strict):
    failures: int = Field(default=BreakerPolicy.failures, ge=1)
    window_s: float = Field(default=BreakerPolicy.window_s, gt=0)
    cooldown_s: float = Field(default=BreakerPolicy.cooldown_s, gt=0)
    error_rate: float = Field(default=BreakerPolicy.error_rate, gt=0, le=1)
    min_calls: int = Field(default=BreakerPolicy.min_calls, ge=1)


class CacheSection(_Strict):
    """The route's response cache (gateway/cache); an alias without ``cache:`` is not cached."""

    ttl_s: float = Field(default=CachePolicy.ttl_s, gt=0, le=30 * 86400)
    max_bytes: int = Field(default=CachePolicy.max_bytes, ge=1)
    only_temperature_zero: bool = CachePolicy.only_temperature_zero


class VariantSection(_Strict):
    target: str | None = None
    targets: list[str] | None = None
    weight: float = Field(ge=0)

    @model_validator(mode="after")
    def _one_of(self) -> VariantSection:
        if (self.target is None) == (self.targets is None):
            raise ValueError("give exactly one of target (a target) or targets (a chain)")
        return self

    def chain(self) -> list[Target]:
        return _targets(self.target if self.target is not None else self.targets)


class ExperimentSection(_Strict):
    sticky_by: StickyBy = "key"
    salt: str = "1"
    variants: dict[str, VariantSection] = Field(min_length=1)

    @field_validator("variants")
    @classmethod
    def _weights(cls, value: dict[str, VariantSection]) -> dict[str, VariantSection]:
        if not any(v.weight > 0 for v in value.values()):
            raise ValueError("at least one variant needs a weight above 0")
        for name, variant in value.items():
            try:
                variant.chain()
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return value


class AliasConfig(_Strict):
    """One alias: a target, a list (fallback chain), or this mapping."""

    targets: list[Target] = Field(default_factory=list)
    timeout_ms: int | None = Field(default=None, ge=1)
    retry: RetrySection = Field(default_factory=RetrySection)
    breaker: BreakerSection = Field(default_factory=BreakerSection)
    fallback_on: list[str] = Field(default_factory=lambda: list(DEFAULT_FALLBACK_ON))
    experiment: ExperimentSection | None = None
    cache: CacheSection | None = None
    prompt_cache: PromptCacheSection | None = None
    semantic_cache: SemanticCacheSection | None = None
    store_bodies: bool = False  # keep prompt and answer text (feedback export needs it)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str | list):
            return {"targets": value}
        return value

    @field_validator("targets", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> list[Target]:
        return _targets(value) if value != [] else []

    @field_validator("fallback_on")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in ERROR_CLASSES:
                raise ValueError(f"unknown error class {name!r}; known: {', '.join(ERROR_CLASSES)}")
        return value

    @model_validator(mode="after")
    def _targets_or_experiment(self) -> AliasConfig:
        if bool(self.targets) == (self.experiment is not None):
            raise ValueError("give either targets or an experiment")
        if self.prompt_cache is not None:
            check_prompt_cache(None, self.chains())
        if self.semantic_cache is not None and self.cache is None:
            raise ValueError("semantic_cache needs the route's cache: section (its ttl_s, rules)")
        return self

    def chains(self) -> list[list[Target]]:
        if self.experiment is None:
            return [self.targets]
        return [v.chain() for v in self.experiment.variants.values()]

    def route(self, name: str) -> Route:
        if self.prompt_cache is not None:
            check_prompt_cache(name, self.chains())
        policy = RoutePolicy(
            timeout_ms=self.timeout_ms,
            retry=RetryPolicy(**self.retry.model_dump()),
            breaker=BreakerPolicy(**self.breaker.model_dump()),
            fallback_on=frozenset(self.fallback_on),
            cache=CachePolicy(**self.cache.model_dump()) if self.cache is not None else None,
            prompt_cache=self.prompt_cache.policy() if self.prompt_cache else None,
            semantic_cache=self.semantic_cache.policy() if self.semantic_cache else None,
            store_bodies=self.store_bodies,
        )
        experiment = None
        if self.experiment is not None:
            section = self.experiment
            experiment = Experiment(
                name,
                {k: Arm(k, tuple(v.chain())) for k, v in section.variants.items()},
                {k: v.weight for k, v in section.variants.items()},
                sticky_by=section.sticky_by,
                salt=section.salt,
            )
        return Route(name, tuple(self.targets), policy, experiment)


class GatewayConfig(_Strict):
    aliases: dict[str, AliasConfig] = Field(default_factory=dict)
    bedrock: BedrockSection = Field(default_factory=BedrockSection)
    local: LocalSection = Field(default_factory=LocalSection)
    # Parallel and routed adapter compositions (gateway/config_local.py, adapters_local/compose).
    compositions: dict[str, CompositionSection] = Field(default_factory=dict)
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

    # Per-target price rows that add to or override gateway/accounting/prices.json.
    prices: dict[str, PriceOverride] = Field(default_factory=dict)
    # Observability (gateway/observability/config.py): /metrics, the access log, CloudWatch.
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    access_log: AccessLogSection = Field(default_factory=AccessLogSection)
    cloudwatch: CloudWatchSection = Field(default_factory=CloudWatchSection)
    # Graders of live traffic (gateway/experiments/graders/config.py).
    graders: dict[str, GraderSection] = Field(default_factory=dict)
    server: ServerSection = Field(default_factory=ServerSection)

    @field_validator("aliases", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of alias name to target or list of targets")
        return value

    def routes(self) -> dict[str, Route]:
        return {name: alias.route(name) for name, alias in self.aliases.items()}


def load_config(settings: Settings) -> GatewayConfig:
    """Read ``settings.config`` (if any) and fill in the embedded defaults."""
    config = _read(settings.config) if settings.config else GatewayConfig()
    bases = config.local.bases
    bases.setdefault(BUILTIN, LocalBase(path=BUILTIN))
    if settings.local_model:
        bases.setdefault("local", LocalBase(path=settings.local_model))
    for name, served in add_compositions(settings.config, config.compositions, bases).items():
        config.aliases.setdefault(name, AliasConfig(targets=[parse_target(served)]))
    if "default" not in config.aliases:
        base = "local" if settings.local_model else BUILTIN
        config.aliases["default"] = AliasConfig(targets=[Target("local", base)])
        config._implied_default = settings.config is not None
    for alias, entry in config.aliases.items():
        for chain in entry.chains():
            for target in chain:
                if target.kind == "local":
                    _check_local(settings.config, alias, target, bases)
    config._unavailable = check_local_bases(settings.config, bases)
    return config


def server_settings(settings: Settings) -> Settings:
    """``settings`` with the file's ``server:`` values where no variable or flag set them."""
    if settings.config is None:
        return settings
    section = _read(settings.config).server.model_dump(exclude_none=True)
    given = {k: v for k, v in section.items() if k not in settings.model_fields_set}
    if not given:
        return settings
    if given.get("workers") == "auto":
        given["workers"] = usable_cores()
    return settings.model_copy(update=given)


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
    parts = adapter_names(target.adapter) if target.adapter else ()
    for adapter in parts:
        if adapter not in base.adapters and not (adapter == "base" and len(parts) > 1):
            raise ConfigError(
                f"{where}: adapter {adapter!r} is not defined under "
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
        key = ".".join(str(p) for p in _as_written(raw, first["loc"])) or "(top level)"
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{path}: {key}: {reason}") from None


def _as_written(raw: dict[str, Any], loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The error's key as the file spells it: an alias written as a target or a list has no
    ``targets`` key of its own."""
    if len(loc) >= 3 and loc[0] == "aliases" and loc[2] == "targets":
        aliases = raw.get("aliases")
        if isinstance(aliases, dict) and not isinstance(aliases.get(loc[1]), dict):
            return loc[:2] + loc[3:]
    return loc
