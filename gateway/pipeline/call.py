"""What the stages share: the ``Call`` going in, the ``Plan`` the route stage makes, and the
``Outcome`` that settle receives. Stages never import each other; they read and fill these."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.auth import Principal
from gateway.canonical import ConverseRequest, Usage
from gateway.errors import (
    DeadlineExceeded,
    StrataError,
    UpstreamDenied,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.pipeline.policy import RoutePolicy
from gateway.targets import Target

Surface = Literal["openai", "bedrock"]


def new_request_id() -> str:
    """A random UUID-shaped id (what Bedrock's x-amzn-RequestId looks like), without uuid4's
    per-call cost."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Hints:
    """What the caller asked for beyond the request body."""

    user: str | None = None  # x-strata-user, or the OpenAI ``user`` field
    timeout_ms: int | None = None  # x-strata-timeout-ms
    # "no-cache" (skip the lookup, refresh the entry) or "no-store" (neither read nor write),
    # from Cache-Control or x-strata-cache; read by the cache stage.
    cache: str | None = None
    # W3C trace context from the client, continued by the tracer (gateway/observability).
    traceparent: str | None = None
    tracestate: str | None = None
    # x-strata-arm: an admin forcing the experiment arm (strata ab replay sends both arms).
    arm: str | None = None


@dataclass(eq=False)
class Outcome:
    """Everything known about a call when it ends; settle hooks receive it exactly once."""

    alias: str | None = None
    variant: str | None = None
    experiment: str | None = None
    # The target that answered, else the last one tried; a bedrock target's region None means
    # the gateway's default region (strata.yaml bedrock.region, else STRATA_AWS_REGION).
    target: Target | None = None
    attempts: int = 0  # upstream attempts started
    usage: Usage | None = None
    # A stream cut short: ``usage`` counts what reached the client, estimated where the
    # upstream never sent its totals (4 characters a token).
    usage_partial: bool = False
    output_chars: int = 0  # streamed text characters sent to the client
    upstream_s: float = 0.0  # waiting on upstream attempts
    backoff_s: float = 0.0  # waiting between attempts
    ttft_s: float | None = None  # a stream's first event, from the call's start
    error: StrataError | None = None
    error_class: str | None = None  # see policy.ERROR_CLASSES, plus "client_disconnected"
    cache: str | None = None  # "hit", "miss" or "bypass" (x-strata-cache), set by the cache stage
    finished: float | None = None  # monotonic, when settled
    # The answer's text pieces, kept only when a stage asked for them by setting a list here
    # before the upstream call (the graders, for sampled calls); None means not kept.
    answer: list[str] | None = None

    def fail(self, error: StrataError) -> None:
        self.error = error
        self.error_class = error_class(error)

    def overhead_ms(self, started: float, now: float | None = None) -> float:
        """Time of the call not spent waiting on the upstream (or between its attempts)."""
        end = now if now is not None else (self.finished or time.monotonic())
        return max(0.0, (end - started - self.upstream_s - self.backoff_s) * 1000)


@dataclass(eq=False)
class Call:
    request_id: str
    principal: Principal
    surface: Surface
    model: str  # the alias or target the caller named
    request: ConverseRequest
    stream: bool = False
    hints: Hints = field(default_factory=Hints)
    started: float = field(default_factory=time.monotonic)
    # Monotonic; the sooner of the caller's timeout and the route's. Set by the pipeline.
    deadline: float | None = None
    # Scratch space for stages, each under its own name (an admit stage's reservation, say).
    context: dict[str, Any] = field(default_factory=dict)
    plan: Plan | None = None  # set by the route stage, before the admit stages run
    outcome: Outcome = field(default_factory=Outcome)

    def remaining_s(self, now: float | None = None) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - (time.monotonic() if now is None else now)


@dataclass(frozen=True)
class Plan:
    """The route stage's answer: the ordered targets to try and the policy to try them with.

    ``targets`` may hold ``variant:`` targets; ``resolve`` turns one into what it points at when
    its attempt comes (raising NotFound for an unknown one), so a chain falls back past it.
    """

    alias: str | None
    targets: tuple[Target, ...]
    policy: RoutePolicy
    resolve: Callable[[Target], Target]
    variant: str | None = None  # the experiment arm chosen, if any
    experiment: str | None = None  # the name of the experiment that chose it


def error_class(error: BaseException) -> str:
    """The coarse class of an error, as ``fallback_on`` names it."""
    if isinstance(error, DeadlineExceeded):
        return "deadline"
    if isinstance(error, UpstreamThrottled):
        return "throttled"
    if isinstance(error, UpstreamUnavailable):
        return "unavailable"
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    if isinstance(error, UpstreamNotFound):
        return "not_found"
    if isinstance(error, UpstreamDenied):
        return "denied"
    if isinstance(error, UpstreamRejected):
        return "rejected"
    if isinstance(error, UpstreamError):
        return "server_error"
    if isinstance(error, StrataError):
        # Our own refusals: unknown alias or variant (404), bad request, auth, limits.
        return {404: "not_found", 429: "throttled"}.get(error.status, "refused")
    return "server_error"
