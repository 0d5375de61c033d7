"""A route's policy as plain values: what strata.yaml says about retries, breakers, fallback.

The config module builds these from YAML; the stages read them. Defaults are the ones a route
gets when its alias is a plain string or list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Names of error classes, as ``fallback_on`` and the settle outcome spell them.
ERROR_CLASSES = (
    "throttled",  # ThrottlingException, ModelNotReadyException, quota
    "unavailable",  # ServiceUnavailableException, connection errors, breaker open
    "timeout",  # read timeouts, ModelTimeoutException
    "server_error",  # InternalServerException, ModelErrorException, a broken reply
    "not_found",  # the upstream does not know the model; an unknown variant
    "denied",  # AccessDeniedException, no credentials
    "rejected",  # ValidationException: the request itself is wrong
)
DEFAULT_FALLBACK_ON = ("throttled", "unavailable", "timeout", "server_error", "not_found", "denied")


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` per target (the first attempt included); backoff grows from ``base_ms``
    by doubling up to ``cap_ms``, with full jitter; retries and fallback attempts together may
    be at most ``budget_ratio`` of first attempts over the budget's window."""

    max_attempts: int = 3
    base_ms: float = 50.0
    cap_ms: float = 2000.0
    budget_ratio: float = 0.2


@dataclass(frozen=True)
class BreakerPolicy:
    """Open after ``failures`` consecutive failures, or when at least ``error_rate`` of the last
    ``window_s`` seconds' calls failed (``min_calls`` calls at least); after ``cooldown_s`` one
    probe is let through, and its success closes the breaker again."""

    failures: int = 5
    window_s: float = 30.0
    cooldown_s: float = 30.0
    error_rate: float = 0.5
    min_calls: int = 20


@dataclass(frozen=True)
class CachePolicy:
    """A route's response cache: entries live ``ttl_s`` seconds; an answer larger than
    ``max_bytes`` (serialised) is not stored; with ``only_temperature_zero`` only requests that
    set temperature 0 are cached (an absent temperature means the model's default, which is
    above 0 for most Bedrock models, so those are not cached either)."""

    ttl_s: float = 300.0
    max_bytes: int = 1024 * 1024
    only_temperature_zero: bool = True


@dataclass(frozen=True)
class PromptCachePolicy:
    """Cache points the gateway inserts itself (gateway/cache/prompt_points.py): after the tools,
    the system prompt and, with ``messages``, the last user turn, for models that take them and
    only once the prefix reaches the larger of ``min_tokens`` and the model's own minimum."""

    system: bool = True
    tools: bool = True
    messages: bool = False
    min_tokens: int = 0


@dataclass(frozen=True)
class SemanticCachePolicy:
    """Near-duplicate prompts served from the route's cache (gateway/cache/semantic.py):
    cosine of the last user turn's embedding at least ``threshold``, the rest of the request
    identical; at most ``max_entries`` vectors per tenant and target."""

    threshold: float = 0.92
    embedder: str = "local"  # "local" or "bedrock:<embedding model id>"
    max_entries: int = 1000


@dataclass(frozen=True)
class RoutePolicy:
    timeout_ms: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    fallback_on: frozenset[str] = frozenset(DEFAULT_FALLBACK_ON)
    cache: CachePolicy | None = None  # None: answers of this route are never cached
    prompt_cache: PromptCachePolicy | None = None  # None: no cache points inserted
    semantic_cache: SemanticCachePolicy | None = None  # None: exact matches only
    # Keep the prompt and answer text of this route's calls (gateway/experiments/bodies.py).
    store_bodies: bool = False
