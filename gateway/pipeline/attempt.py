"""The attempt stage: try a plan's targets in order, each through its breaker, retrying
retryable errors with backoff inside the call's deadline and the route's retry budget.

Per target: skip it while its breaker is open; resolve it (a ``variant:`` may be unknown);
attempt up to ``max_attempts`` times. A target's last error falls back to the next target when
its class is in the route's ``fallback_on``. Every attempt after the call's first one (a retry
or a fallback) is paid from the budget; an empty budget ends the call with the last error. An
attempt is not started when it could not finish before the deadline; a deadline that passes
during an attempt cancels it and answers 504 at once.

A stream counts as answered when its first event arrives: before that it is retried and falls
back like any call, after that it is the client's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

from gateway.cache import prompt_points
from gateway.canonical import ConverseResponse, StreamEvent
from gateway.errors import CircuitOpen, DeadlineExceeded, StrataError, UpstreamUnavailable
from gateway.pipeline.breaker import Breakers, is_failure
from gateway.pipeline.call import Call, Outcome, Plan, error_class
from gateway.pipeline.retry import (
    FastestRecent,
    Random,
    RetryBudget,
    can_start,
    retry_delay_s,
)
from gateway.providers.base import Provider
from gateway.targets import Kind, Target

log = logging.getLogger("strata.attempt")

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
Once = Callable[[Provider, Target], Awaitable[T]]
# Wraps one upstream attempt (a tracer's child span); the callable it yields is given the
# attempt's result when it succeeds. The default does nothing.
AttemptScope = Callable[[Call, Target], AbstractContextManager[Callable[[object], None]]]
Opened = tuple[StreamEvent | None, AsyncGenerator[StreamEvent, None]]
_TABLE_LIMIT = 4096


class AttemptStage:
    def __init__(
        self,
        providers: Mapping[Kind, Provider],
        *,
        breakers: Breakers | None = None,
        rand: Random = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        trace: AttemptScope | None = None,
    ) -> None:
        self._providers = dict(providers)
        self.trace: AttemptScope = trace or _untraced
        self.breakers = breakers or Breakers()
        self._rand = rand
        self._sleep = sleep
        self._budgets: OrderedDict[tuple[str, float], RetryBudget] = OrderedDict()
        self._speed: OrderedDict[str, FastestRecent] = OrderedDict()

    def budget(self, plan: Plan) -> RetryBudget:
        """The route's retry budget (a direct target is its own route)."""
        key = (plan.alias or str(plan.targets[0]), plan.policy.retry.budget_ratio)
        return _lru(self._budgets, key, lambda: RetryBudget(key[1]))

    async def converse(self, call: Call, plan: Plan, outcome: Outcome) -> ConverseResponse:
        async def once(provider: Provider, target: Target) -> ConverseResponse:
            return await provider.converse(target, prompt_points.prepare(call, plan, target))

        return await self._run(call, plan, outcome, once)

    async def open_stream(self, call: Call, plan: Plan, outcome: Outcome) -> Opened:
        """A stream whose first event has arrived (None: it ended without any), and the rest."""

        async def once(provider: Provider, target: Target) -> Opened:
            stream = provider.converse_stream(target, prompt_points.prepare(call, plan, target))
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                return None, stream
            except BaseException:
                await stream.aclose()
                raise
            return first, stream

        opened = await self._run(call, plan, outcome, once)
        outcome.ttft_s = time.monotonic() - call.started
        return opened

    async def _run(self, call: Call, plan: Plan, outcome: Outcome, once: Once[T]) -> T:
        policy = plan.policy
        budget = self.budget(plan)
        last: StrataError | None = None
        for index, raw in enumerate(plan.targets):
            more = index + 1 < len(plan.targets)
            try:
                target = plan.resolve(raw)
                provider = self._provider(target)
            except StrataError as exc:
                outcome.target, last = raw, exc
                if more and error_class(exc) in policy.fallback_on:
                    log.debug("target %s skipped (%s)", raw, type(exc).__name__)
                    continue
                raise
            breaker = self.breakers.get(target, policy.breaker)
            if not breaker.allow():
                if last is None or isinstance(last, CircuitOpen):  # an upstream's error says more
                    last = CircuitOpen(
                        f"every target of {call.model!r} is unavailable (circuit open); "
                        "retry later",
                        retry_after=breaker.retry_after_s(),
                    )
                continue
            outcome.target = target
            speed = _lru(self._speed, str(target), FastestRecent)
            for n in range(1, policy.retry.max_attempts + 1):
                if outcome.attempts:  # a retry, or the first attempt on a fallback target
                    delay = 0.0
                    if n > 1:
                        if not breaker.allow():
                            break  # the last failure opened it
                        assert last is not None
                        found = retry_delay_s(n - 1, last, policy.retry, self._rand)
                        if found is None:
                            break
                        delay = found
                    if not can_start(time.monotonic(), call.deadline, delay, speed.floor_s()):
                        breaker.release()
                        raise _deadline(call, last)
                    if not budget.try_spend():
                        breaker.release()
                        assert last is not None
                        raise last
                    if delay:
                        await self._sleep(delay)
                        outcome.backoff_s += delay
                else:
                    budget.record_first()
                try:
                    result = await self._attempt(call, outcome, provider, target, once, speed)
                except StrataError as exc:
                    if isinstance(exc, DeadlineExceeded):
                        breaker.release()
                        raise
                    breaker.record(failed=is_failure(exc))
                    last = exc
                    continue
                except BaseException:
                    breaker.release()
                    raise
                breaker.record(failed=False)
                return result
            assert last is not None
            if not (more and error_class(last) in policy.fallback_on):
                raise last
            # Per request, so debug: under a brown-out this would be most of the log. Breakers
            # log their transitions at warning.
            log.debug("target %s failed (%s); falling back", target, type(last).__name__)
        assert last is not None
        raise last

    async def _attempt(
        self,
        call: Call,
        outcome: Outcome,
        provider: Provider,
        target: Target,
        once: Once[T],
        speed: FastestRecent,
    ) -> T:
        remaining = call.remaining_s()
        if remaining is not None and remaining <= 0:
            raise _deadline(call, None)
        outcome.attempts += 1
        started = time.monotonic()
        try:
            with self.trace(call, target) as answered:
                if remaining is None:
                    result = await once(provider, target)
                else:
                    async with asyncio.timeout(remaining) as scope:
                        result = await once(provider, target)
                answered(result)
        except TimeoutError:
            if remaining is not None and scope.expired():
                raise _deadline(call, None) from None
            raise
        finally:
            outcome.upstream_s += time.monotonic() - started
        speed.add(time.monotonic() - started)
        return result

    def _provider(self, target: Target) -> Provider:
        provider = self._providers.get(target.kind)
        if provider is None:
            raise UpstreamUnavailable(f"the {target.kind} provider is not enabled")
        return provider


def _untraced(call: Call, target: Target) -> AbstractContextManager[Callable[[object], None]]:
    return nullcontext(_ignore)


def _ignore(result: object) -> None:
    return None


def _deadline(call: Call, last: StrataError | None) -> StrataError:
    """The error for a call out of time: the last upstream error when there was one (it says
    more than "deadline" does), else 504."""
    if last is not None and (call.remaining_s() or 0.0) > 0:
        return last
    return DeadlineExceeded("the request's deadline passed before the model answered")


def _lru(table: OrderedDict[K, V], key: K, make: Callable[[], V]) -> V:
    found = table.get(key)
    if found is None:
        found = table[key] = make()
        if len(table) > _TABLE_LIMIT:
            table.popitem(last=False)
    else:
        table.move_to_end(key)
    return found
