"""Circuit breakers, one per target (and breaker policy), per process.

    closed ──N consecutive failures, or error rate over the window──> open
    open ──cool-down passed; the next call is the one probe──> half-open
    half-open ──probe succeeds──> closed;  ──probe fails──> open (a new cool-down)

While open, and while a probe is in flight, the target is skipped and the chain's next target
serves at once. Only signs that the target itself is unhealthy count as failures: 5xx,
unavailable, timeouts, connection errors. Throttling, a rejected request or an unknown model
says the target is up; retries and the retry budget deal with throttling.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from gateway.errors import StrataError, UpstreamDenied, UpstreamError
from gateway.pipeline.policy import BreakerPolicy
from gateway.pipeline.window import SlidingCounts
from gateway.targets import Target

log = logging.getLogger("strata.breaker")

State = Literal["closed", "open", "half_open"]
_FAILURE_CODES = frozenset(
    {"ServiceUnavailableException", "InternalServerException", "ModelTimeoutException"}
)


def is_failure(error: StrataError) -> bool:
    """Whether ``error`` says the target is unhealthy (see the module docstring)."""
    if not isinstance(error, UpstreamError) or isinstance(error, UpstreamDenied):
        return False
    return error.status >= 500 or error.bedrock_code in _FAILURE_CODES


class Breaker:
    def __init__(
        self,
        policy: BreakerPolicy,
        clock: Callable[[], float] = time.monotonic,
        name: str = "target",
    ) -> None:
        self.policy = policy
        self.name = name
        self._clock = clock
        self.state: State = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        self._window = SlidingCounts(("calls", "failures"), policy.window_s)

    def allow(self) -> bool:
        """Whether a call may go to the target now; in half-open, only the one probe may."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if self._clock() < self._opened_at + self.policy.cooldown_s:
                return False
            self.state = "half_open"
        if self._probing:
            return False
        self._probing = True
        return True

    def retry_after_s(self) -> float:
        return max(0.0, self._opened_at + self.policy.cooldown_s - self._clock())

    def record(self, failed: bool) -> None:
        """The result of a call that ``allow`` let through."""
        now = self._clock()
        if self.state == "half_open":
            self._probing = False
            if failed:
                self._open(now)
            else:
                self._close()
            return
        if self.state == "open":
            return  # a call started before the breaker opened; it changes nothing
        self._window.add(now, "calls")
        if not failed:
            self._consecutive = 0
            return
        self._consecutive += 1
        self._window.add(now, "failures")
        calls = self._window.total(now, "calls")
        rate_trips = (
            calls >= self.policy.min_calls
            and self._window.total(now, "failures") >= self.policy.error_rate * calls
        )
        if self._consecutive >= self.policy.failures or rate_trips:
            self._open(now)

    def release(self) -> None:
        """A call that ended without telling anything (cancelled, deadline): if it was the
        probe, the next call probes instead."""
        if self.state == "half_open":
            self._probing = False

    def _open(self, now: float) -> None:
        if self.state != "open":
            log.warning(
                "circuit for %s open for %.0f s (%s)",
                self.name,
                self.policy.cooldown_s,
                "probe failed" if self.state == "half_open" else "failures",
            )
        self.state = "open"
        self._opened_at = now
        self._probing = False

    def _close(self) -> None:
        log.warning("circuit for %s closed: the probe succeeded", self.name)
        self.state = "closed"
        self._consecutive = 0
        self._window.clear()


class Breakers:
    """Breakers by (target, policy), least recently used dropped past ``limit``: callers may name
    targets directly, so the table must not grow without bound."""

    def __init__(self, limit: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._table: OrderedDict[tuple[str, BreakerPolicy], Breaker] = OrderedDict()

    def get(self, target: Target, policy: BreakerPolicy) -> Breaker:
        key = (str(target), policy)
        breaker = self._table.get(key)
        if breaker is None:
            breaker = self._table[key] = Breaker(policy, self._clock, key[0])
            if len(self._table) > self._limit:
                self._table.popitem(last=False)
        else:
            self._table.move_to_end(key)
        return breaker
