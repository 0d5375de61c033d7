"""The retry policy as pure parts: which errors, how long to wait, whether the deadline allows
another attempt, and the retry budget. The attempt stage is their only user; every provider
makes one attempt per call and gets this policy from there.

Backoff is "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): before retry
``n`` wait ``uniform(0, min(cap, base * 2**(n-1)))``. The budget is Finagle's RetryBudget (and
what Envoy's and gRPC's retry throttling aim at): over a sliding window, retries may be at most
``reserve + ratio * first attempts``, so an upstream in a brown-out sees about (1 + ratio) times
the offered load, not ``max_attempts`` times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from gateway.errors import DeadlineExceeded, StrataError, UpstreamError
from gateway.pipeline.policy import RetryPolicy
from gateway.pipeline.window import SlidingCounts

Random = Callable[[], float]


def is_retryable(error: StrataError) -> bool:
    """Providers mark what is worth retrying when they translate (ThrottlingException,
    ModelNotReadyException, ServiceUnavailableException, InternalServerException, 5xx replies,
    connection errors, read timeouts); never ValidationException, AccessDenied or
    ModelErrorException, and never our own deadline."""
    return (
        isinstance(error, UpstreamError)
        and error.retryable
        and not isinstance(error, DeadlineExceeded)
    )


def backoff_s(retry: int, policy: RetryPolicy, rand: Random = random.random) -> float:
    """Seconds to wait before retry number ``retry`` (1 = the first retry), full jitter."""
    ceiling_ms = min(policy.cap_ms, policy.base_ms * float(1 << min(max(0, retry - 1), 40)))
    return rand() * ceiling_ms / 1000.0


def retry_delay_s(
    retry: int, error: StrataError, policy: RetryPolicy, rand: Random = random.random
) -> float | None:
    """How long to wait before retrying after ``error``; None when it must not be retried here:
    not retryable, or the upstream's Retry-After is longer than the policy's cap (waiting that
    long in a request is worse than falling back or answering with the error)."""
    if not is_retryable(error):
        return None
    delay = backoff_s(retry, policy, rand)
    asked = error.retry_after_s if isinstance(error, UpstreamError) else None
    if asked is not None:
        if asked * 1000.0 > policy.cap_ms:
            return None
        delay = max(delay, asked)
    return delay


def can_start(now: float, deadline: float | None, delay_s: float, floor_s: float = 0.0) -> bool:
    """Whether an attempt that begins after ``delay_s`` and takes at least ``floor_s`` (the
    target's fastest recent answer) can finish before ``deadline``."""
    return deadline is None or now + delay_s + floor_s < deadline


class RetryBudget:
    """Retries (fallback attempts included) allowed over the last ``window_s`` seconds:
    ``reserve + ratio * first attempts``. One per route, per process."""

    def __init__(
        self,
        ratio: float,
        *,
        window_s: float = 10.0,
        reserve: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.reserve = reserve
        self._clock = clock
        self._counts = SlidingCounts(("first", "retry"), window_s)

    def record_first(self) -> None:
        self._counts.add(self._clock(), "first")

    def balance(self) -> float:
        now = self._clock()
        allowed = self.reserve + self.ratio * self._counts.total(now, "first")
        return allowed - self._counts.total(now, "retry")

    def try_spend(self) -> bool:
        """Take one retry from the budget, or say there is none left."""
        if self.balance() < 1.0:
            return False
        self._counts.add(self._clock(), "retry")
        return True


class FastestRecent:
    """The fastest of a target's last few successful attempts: an attempt with less time left
    than this is not started (it could not finish before the deadline)."""

    def __init__(self, keep: int = 16) -> None:
        self._samples: list[float] = []
        self._keep = keep

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)
        if len(self._samples) > self._keep:
            del self._samples[0]

    def floor_s(self) -> float:
        # With too little evidence, assume an attempt can be fast.
        return min(self._samples) if len(self._samples) >= 3 else 0.0
