"""The request pipeline: the one place where a call's policy lives.

    route    alias → experiment arm → ordered targets and policy (call.plan)  route.py
    admit    refuse before any upstream call (key scope, limits, budgets);    admit.py
             sees the plan, so a budget can price the worst case of its targets
    cache    a stored answer, or one identical call in flight; else attempt   gateway/cache
             and store what came back (routes with ``cache:`` only)
    attempt  breaker → provider → retry with backoff, deadline, budget →      attempt.py
             next target; a stream falls back only before its first event
    settle   exactly once per call, with the Outcome                          settle.py

Both surfaces build a ``Call`` and hand it to ``converse`` or ``converse_stream``; they get the
answer, and ``call.outcome`` (target, variant, attempts, usage, timings) for their headers, on
success and on error alike.

Adding a stage: write a small module with one object; an admit stage goes in the ``admit`` list
and a settle hook in the ``settle`` hooks list that ``gateway/app.py``'s lifespan passes here. A
stage that sits between route and attempt (the cache, next) gets its own named step in the two
methods below, so that the order stays readable top to bottom. Stages share data only through
the ``Call`` (its ``context`` dict for their own notes) and the ``Outcome``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence

from gateway.cache.stage import CacheStage
from gateway.canonical import ConverseResponse, StreamEvent, Usage
from gateway.errors import StrataError, UpstreamError
from gateway.pipeline.admit import AdmitStage, admit_all
from gateway.pipeline.attempt import AttemptStage, Opened
from gateway.pipeline.call import Call, Outcome, Plan
from gateway.pipeline.route import RouteStage
from gateway.pipeline.settle import Settle

FAILED = "the model provider failed to answer"


class Pipeline:
    def __init__(
        self,
        *,
        route: RouteStage,
        attempt: AttemptStage,
        settle: Settle,
        admit: Sequence[AdmitStage] = (),
        cache: CacheStage | None = None,
    ) -> None:
        self.admit = list(admit)
        self.cache = cache
        self.route = route
        self.attempt = attempt
        self.settle = settle

    async def converse(self, call: Call) -> ConverseResponse:
        outcome = call.outcome
        try:
            plan = self._plan(call, outcome)
            await admit_all(self.admit, call)

            def upstream() -> Awaitable[ConverseResponse]:
                return self.attempt.converse(call, plan, outcome)

            if self.cache is not None:
                response = await self.cache.converse(call, plan, upstream)
            else:
                response = await upstream()
        except BaseException as exc:
            await self._failed(call, exc)
            raise
        outcome.usage = response.usage
        call.context["finish_reason"] = response.stopReason
        if outcome.answer is not None:
            outcome.answer.append(response.text())
        await self.settle(call, outcome)
        return response

    async def converse_stream(self, call: Call) -> Relay:
        """A stream whose first event has arrived; errors before it raise (for the surface to
        answer with a status), errors after it come out of the iterator."""
        outcome = call.outcome
        try:
            plan = self._plan(call, outcome)
            await admit_all(self.admit, call)

            def upstream() -> Awaitable[Opened]:
                return self.attempt.open_stream(call, plan, outcome)

            if self.cache is not None:
                first, rest = await self.cache.open_stream(call, plan, upstream)
            else:
                first, rest = await upstream()
        except BaseException as exc:
            await self._failed(call, exc)
            raise
        return Relay(call, outcome, self.settle, first, rest)

    async def _failed(self, call: Call, exc: BaseException) -> None:
        """Settle a call that ended before its answer: an error, or its task cancelled."""
        if isinstance(exc, asyncio.CancelledError):
            call.outcome.error_class = "client_disconnected"
            self.settle.in_background(call, call.outcome)
            return
        call.outcome.fail(exc if isinstance(exc, StrataError) else StrataError("internal error"))
        await self.settle(call, call.outcome)

    def _plan(self, call: Call, outcome: Outcome) -> Plan:
        plan = call.plan = self.route.plan(call)
        outcome.alias, outcome.variant = plan.alias, plan.variant
        outcome.experiment = plan.experiment
        if plan.policy.timeout_ms is not None:
            route_deadline = call.started + plan.policy.timeout_ms / 1000
            if call.deadline is None or route_deadline < call.deadline:
                call.deadline = route_deadline
        return plan


class Relay:
    """The rest of an answered stream: passes events on, keeps usage and timings in the
    Outcome, and settles exactly once, at the end, on a mid-stream error, or on ``aclose``
    (the client went away)."""

    def __init__(
        self,
        call: Call,
        outcome: Outcome,
        settle: Settle,
        first: StreamEvent | None,
        rest: AsyncGenerator[StreamEvent, None],
    ) -> None:
        self._call = call
        self._outcome = outcome
        self._settle = settle
        self._first = first
        self._rest = rest
        self._done = False

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._done:
            raise StopAsyncIteration
        if self._first is not None:
            event, self._first = self._first, None
            self._track(event)
            return event
        started = time.monotonic()
        try:
            event = await anext(self._rest)
        except StopAsyncIteration:
            self._outcome.upstream_s += time.monotonic() - started
            await self._finish(None)
            raise
        except StrataError as exc:
            self._outcome.upstream_s += time.monotonic() - started
            await self._finish(exc)
            raise
        except asyncio.CancelledError:
            self._disconnected()
            raise
        except Exception as exc:  # a provider bug must still end the stream properly
            await self._finish(UpstreamError(FAILED))
            raise UpstreamError(FAILED) from exc
        self._outcome.upstream_s += time.monotonic() - started
        self._track(event)
        return event

    async def aclose(self) -> None:
        """The client is gone (or the surface stopped early): close upstream, then settle."""
        if self._done:
            return
        await self._rest.aclose()
        self._outcome.error_class = "client_disconnected"
        await self._finish(None, partial=True)

    def _track(self, event: StreamEvent) -> None:
        delta = event.get("contentBlockDelta")
        if delta is not None:
            text = delta["delta"].get("text", "")
            self._outcome.output_chars += len(text)
            if self._outcome.answer is not None:
                self._outcome.answer.append(text)
            return
        stop = event.get("messageStop")
        if stop is not None:
            self._call.context["finish_reason"] = stop.get("stopReason")
            return
        metadata = event.get("metadata")
        if metadata is not None and "usage" in metadata:
            self._outcome.usage = Usage.model_validate(metadata["usage"])

    def _disconnected(self) -> None:
        self._done = True
        self._outcome.error_class = "client_disconnected"
        self._mark_partial()
        self._settle.in_background(self._call, self._outcome)

    async def _finish(self, error: StrataError | None, *, partial: bool = False) -> None:
        self._done = True
        if error is not None:
            self._outcome.fail(error)
        if error is not None or partial:
            self._mark_partial()
        await self._settle(self._call, self._outcome)

    def _mark_partial(self) -> None:
        if self._outcome.usage is not None:
            return  # the upstream's own totals arrived before the cut
        self._outcome.usage_partial = True
        self._outcome.usage = estimate_usage(self._call, self._outcome.output_chars)


def estimate_usage(call: Call, output_chars: int) -> Usage:
    """Tokens for a stream cut before the upstream sent its totals: about 4 characters a token
    (the usual rule of thumb for English text), rounded up, so nothing is billed as free."""
    request = call.request
    chars = len(request.system_text()) + sum(
        len(block.text or "") for message in request.messages for block in message.content
    )
    inputs, outputs = -(-chars // 4), -(-output_chars // 4)
    return Usage(inputTokens=inputs, outputTokens=outputs, totalTokens=inputs + outputs)
