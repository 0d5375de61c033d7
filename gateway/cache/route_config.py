"""strata.yaml's per-alias ``prompt_cache:`` and ``semantic_cache:`` sections, and the check
that a route asking for prompt caching has a target that can do it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.cache.prompt_models import lookup
from gateway.pipeline.policy import PromptCachePolicy, SemanticCachePolicy
from gateway.targets import Target

log = logging.getLogger("strata.config")


class PromptCacheSection(BaseModel):
    """Cache points the gateway inserts (gateway/cache/prompt_points.py)."""

    model_config = ConfigDict(extra="forbid")

    system: bool = PromptCachePolicy.system
    tools: bool = PromptCachePolicy.tools
    messages: bool = PromptCachePolicy.messages  # after the last user turn
    min_tokens: int = Field(default=PromptCachePolicy.min_tokens, ge=0)

    def policy(self) -> PromptCachePolicy:
        return PromptCachePolicy(**self.model_dump())


class SemanticCacheSection(BaseModel):
    """Near-duplicate prompts from the route's cache (gateway/cache/semantic.py)."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=SemanticCachePolicy.threshold, gt=0, le=1)
    embedder: str = SemanticCachePolicy.embedder
    max_entries: int = Field(default=SemanticCachePolicy.max_entries, ge=1, le=100_000)

    @field_validator("embedder")
    @classmethod
    def _embedder(cls, value: str) -> str:
        kind, sep, model = value.partition(":")
        if value == "local" or (kind == "bedrock" and sep and model):
            return value
        raise ValueError("embedder: give local or bedrock:<embedding model id>")

    def policy(self) -> SemanticCachePolicy:
        return SemanticCachePolicy(**self.model_dump())


def check_prompt_cache(alias: str | None, chains: Iterable[Iterable[Target]]) -> None:
    """Refuse a route none of whose targets takes cache points; with ``alias``, warn about the
    targets that don't (they are sent without inserted points). ``variant:`` targets are
    resolved per call, so they are not judged here."""
    targets = [t for chain in chains for t in chain]
    if any(t.kind == "variant" for t in targets):
        return
    unsupported = [str(t) for t in targets if t.kind != "bedrock" or lookup(t.model) is None]
    if len(unsupported) == len(targets):
        raise ValueError(
            "prompt_cache: none of the targets takes prompt-cache points "
            f"({', '.join(unsupported)}); the models that do are listed in "
            "gateway/cache/prompt_cache_models.yaml"
        )
    if unsupported and alias is not None:
        log.warning(
            "alias %s: prompt_cache is ignored for %s (no prompt caching on that model)",
            alias,
            ", ".join(unsupported),
        )
