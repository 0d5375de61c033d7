"""``CallRecord``: what every signal needs to know about one finished call, built once in the
settle hook from the ``Call`` and its ``Outcome``. It holds no prompt text and no key."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.accounting.errors import BudgetExceeded, KeyRateLimited
from gateway.pipeline.call import Call, Outcome

# Token kinds, as the metric label ``kind`` names them.
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True, slots=True)
class CallRecord:
    request_id: str
    tenant: str
    surface: str
    stream: bool
    alias: str
    target: str
    variant: str
    status: int
    error_class: str | None
    refusal: str | None  # "budget" or "rate_limit": refused by accounting before any attempt
    attempts: int
    cache: str  # "hit", "semantic-hit", "miss", "bypass" or "off"
    tokens: tuple[int, int, int, int]  # in TOKEN_KINDS order
    cost_pusd: int | None  # pico-USD, as the ledger keeps it; None: no price known
    saved_pusd: int  # cache savings, pico-USD
    latency_s: float
    upstream_s: float
    overhead_s: float
    ttft_s: float | None
    finish_reason: str | None
    wall_time: float  # time.time() at settle


def status_of(outcome: Outcome) -> int:
    error = outcome.error
    if error is not None:
        return error.status
    return 499 if outcome.error_class == "client_disconnected" else 200


def build(
    call: Call, outcome: Outcome, cost_pusd: int | None, saved_pusd: int, finish: str | None
) -> CallRecord:
    usage = outcome.usage
    if usage is None:
        tokens = (0, 0, 0, 0)
    else:
        tokens = (
            usage.inputTokens,
            usage.outputTokens,
            usage.cacheReadInputTokens or 0,
            usage.cacheWriteInputTokens or 0,
        )
    error = outcome.error
    refusal = (
        "budget"
        if isinstance(error, BudgetExceeded)
        else "rate_limit"
        if isinstance(error, KeyRateLimited)
        else None
    )
    finished = outcome.finished or time.monotonic()
    return CallRecord(
        request_id=call.request_id,
        tenant=call.principal.tenant,
        surface=call.surface,
        stream=call.stream,
        alias=outcome.alias or "",
        target=str(outcome.target) if outcome.target is not None else "",
        variant=outcome.variant or "",
        status=status_of(outcome),
        error_class=outcome.error_class,
        refusal=refusal,
        attempts=outcome.attempts,
        # What the cache stage did (hit, semantic-hit, miss, bypass); "off": it never ran.
        cache=outcome.cache or "off",
        tokens=tokens,
        cost_pusd=cost_pusd,
        saved_pusd=saved_pusd,
        latency_s=finished - call.started,
        upstream_s=outcome.upstream_s,
        overhead_s=outcome.overhead_ms(call.started, finished) / 1000,
        ttft_s=outcome.ttft_s,
        finish_reason=finish,
        wall_time=time.time(),
    )
