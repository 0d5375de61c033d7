"""The pipeline's accounting: one admit stage (key scope → rate limits → budget reservation)
and one settle hook (ledger record, limit and budget correction), talking through the Call.

Admission refuses before any upstream call. What it reserved is kept in
``call.context["accounting"]``; settle, called exactly once per call, reads it back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

import orjson

from gateway.accounting.budgets import BudgetScope, Refusal
from gateway.accounting.errors import AccountingUnavailable, BudgetExceeded, KeyRateLimited
from gateway.accounting.keys import KeyPrincipal, Limits, check_scope
from gateway.accounting.ledger import LedgerRecord
from gateway.accounting.limits import Check, Decision
from gateway.accounting.money import PICO, pusd_to_usd, usd_text, usd_to_pusd
from gateway.accounting.prices import Cost, TokenUsage, token_usage
from gateway.accounting.redis_state import SharedStateDown
from gateway.accounting.service import Accounting
from gateway.canonical import ConverseRequest, Usage
from gateway.errors import Forbidden, StrataError
from gateway.pipeline.call import Call, Outcome
from gateway.targets import Target

log = logging.getLogger("strata.accounting.stage")

CONTEXT = "accounting"
NOTHING = Cost(Decimal(0), "none")
# Tokens a message's framing (role markers, separators) may add beyond its text.
_PER_MESSAGE = 8


@dataclass
class Admission:
    """What admission took from the shared counters, for settle to correct."""

    token_counters: list[str] = field(default_factory=list)
    token_estimate: int = 0
    scopes: list[BudgetScope] = field(default_factory=list)
    reserved_pusd: int = 0
    at: float = 0.0


def price_key(target: Target) -> str:
    """The price table's key for a target: region and adapter do not change the row."""
    return f"{target.kind}:{target.model}"


def input_bound(request: ConverseRequest) -> int:
    """An upper bound on the request's input tokens without a tokenizer: a byte-level BPE token
    covers at least one byte, so UTF-8 bytes (plus framing) bound the count; non-text blocks
    (images, documents, tools) are bounded by their JSON size."""
    total = 0
    blocks: list[object] = [*(request.system or [])]
    for message in request.messages:
        total += _PER_MESSAGE
        blocks.extend(message.content)
    for block in blocks:
        text = getattr(block, "text", None)
        extra = getattr(block, "model_extra", None)
        if text is not None and not extra:
            total += len(text.encode())
        else:
            dumped = block.model_dump(exclude_none=True)  # type: ignore[attr-defined]
            total += len(orjson.dumps(dumped))
    if request.toolConfig:
        total += len(orjson.dumps(request.toolConfig))
    return total


def _scopes(principal: KeyPrincipal) -> list[BudgetScope]:
    out = []
    for kind, ident, limits in (
        ("key", principal.key_id, principal.limits),
        ("tenant", principal.tenant, principal.tenant_limits),
    ):
        if limits.budget_pusd is not None:
            out.append(BudgetScope(kind, ident, limits.budget_pusd, limits.budget_period))
    return out


def _checks(principal: KeyPrincipal, tokens: int) -> list[Check]:
    out = []
    for kind, ident, limits in (
        ("key", principal.key_id, principal.limits),
        ("tenant", principal.tenant, principal.tenant_limits),
    ):
        if limits.rpm is not None:
            out.append(Check(f"{kind}:{ident}:requests", "requests", limits.rpm, 1))
        if limits.tpm is not None:
            out.append(Check(f"{kind}:{ident}:tokens", "tokens", limits.tpm, tokens))
    return out


def _has_limits(limits: Limits) -> bool:
    return limits != Limits()


def reachable_targets(call: Call) -> list[Target]:
    """The targets a call may reach: its plan's whole fallback chain, variants resolved where
    they resolve (the route stage plans before admission); the dearest one is priced."""
    plan = call.plan
    if plan is None:
        return []
    out = []
    for target in plan.targets:
        try:
            out.append(plan.resolve(target))
        except StrataError:
            out.append(target)  # priced by its variant: name, or refused as unknown
    return out


class AccountingAdmit:
    """Refuses a call its key may not make, one over its rate limits, or one its budget
    cannot cover at worst; takes its rate-limit costs and reserves that worst case."""

    def __init__(self, accounting: Accounting, is_alias: Callable[[str], bool]) -> None:
        self._acc = accounting
        self._is_alias = is_alias

    async def admit(self, call: Call) -> None:
        principal = call.principal
        check_scope(principal, call.model, self._is_alias(call.model))
        if not isinstance(principal, KeyPrincipal):
            return
        if not (_has_limits(principal.limits) or _has_limits(principal.tenant_limits)):
            return
        settings = self._acc.settings
        inputs = input_bound(call.request)
        config = call.request.inferenceConfig
        max_out = (config.maxTokens if config else None) or settings.reserve_default_max_tokens
        # Tokens per minute are charged at admission as an estimate (~4 bytes a token, plus
        # the output cap) and corrected to the reported usage at settle.
        estimate = math.ceil(inputs / 4) + max_out
        checks = _checks(principal, estimate)
        scopes = _scopes(principal)
        amount = self._worst_case(call, inputs, max_out) if scopes else 0
        at = time.time()
        try:
            admitted = await self._acc.shared.admit(checks, scopes, amount, at)
        except SharedStateDown:
            self._unavailable(bool(checks), bool(scopes))
            return
        if not admitted.limits.allowed:
            raise _limited(admitted.limits)
        if admitted.budget is not None:
            raise _over_budget(admitted.budget, amount)
        call.context[CONTEXT] = Admission(
            [c.counter for c in checks if c.unit == "tokens"], estimate, scopes, amount, at
        )

    def _worst_case(self, call: Call, inputs: int, max_out: int) -> int:
        """The dearest target the call may reach, every input token at its dearest rate and
        ``max_out`` output tokens, in pico-USD rounded up."""
        worst = Decimal(0)
        for target in reachable_targets(call):
            usd = self._acc.prices.worst_case_usd(price_key(target), inputs, max_out)
            if usd is None:
                raise Forbidden(
                    f"no price is known for {target}, so a budgeted key cannot use it; "
                    "add it under prices: in strata.yaml",
                    param="model",
                )
            worst = max(worst, usd)
        return int((worst * PICO).to_integral_value(rounding=ROUND_CEILING))

    def _unavailable(self, limited: bool, budgeted: bool) -> None:
        """Redis is unreachable: each policy says whether the call may go on without it."""
        warnings, settings = self._acc.warnings, self._acc.settings
        warnings.redis_errors += 1
        if budgeted and settings.budget_on_redis_error == "closed":
            raise AccountingUnavailable(
                "this key has a budget that cannot be checked right now (shared state "
                "unreachable); retry shortly"
            )
        if limited and settings.limits_on_redis_error == "closed":
            raise AccountingUnavailable(
                "rate limits cannot be checked right now (shared state unreachable); retry shortly"
            )
        if budgeted:
            warnings.served_without_budget += 1
        if limited:
            warnings.served_without_limits += 1


def _over_budget(refusal: Refusal, amount: int) -> BudgetExceeded:
    scope = refusal.scope
    left = max(0, scope.limit_pusd - refusal.used_pusd)
    return BudgetExceeded(
        f"budget exceeded for {scope.kind} {scope.id!r} ({scope.period}): limit "
        f"{usd_text(pusd_to_usd(scope.limit_pusd))} USD, {usd_text(pusd_to_usd(left))} USD "
        f"left, this call may cost up to {usd_text(pusd_to_usd(amount))} USD",
        retry_after=60,
    )


def _limited(decision: Decision) -> KeyRateLimited:
    assert decision.refused is not None
    check = decision.checks[decision.refused]
    per = "requests" if check.unit == "requests" else "tokens"
    if check.cost > check.limit:
        message = (
            f"this request needs about {check.cost} tokens, more than the {check.limit} "
            "tokens per minute this key allows; lower max_tokens"
        )
    else:
        message = f"rate limit reached: {check.limit} {per} per minute ({check.counter})"
    error = KeyRateLimited(message, retry_after=decision.retry_after_s)
    error.response_headers.update(decision.headers())
    return error


class AccountingSettle:
    """Records the call in the ledger and corrects its token charge and budget reservation."""

    def __init__(self, accounting: Accounting, default_region: str | None) -> None:
        self._acc = accounting
        self._region = default_region

    async def __call__(self, call: Call, outcome: Outcome) -> None:
        usage = _tokens(outcome.usage)
        target = outcome.target
        if not usage.total:
            cost: Cost | None = NOTHING  # refused, or failed before any token: known to be 0
        elif target is None:
            cost = None
        else:
            cost = self._acc.prices.cost(price_key(target), usage)
        if call.context.get("cache_hit") and cost is not None:
            # Served by the gateway's cache: nothing billed; what it would have cost is saved.
            cost = Cost(Decimal(0), cost.pricing, cost.usd)
        actual_pusd = None if cost is None or cost.usd is None else usd_to_pusd(cost.usd)
        pricing = cost.pricing if cost is not None else "unknown"
        if pricing == "unknown":
            self._acc.warnings.unknown_price += 1
        self._acc.ledger.record(self._record(call, outcome, usage, actual_pusd, pricing, cost))
        adm = call.context.get(CONTEXT)
        if isinstance(adm, Admission):
            # A cache hit used no upstream tokens: release its token charge in full.
            spent_tokens = TokenUsage() if call.context.get("cache_hit") else usage
            await self._correct(adm, spent_tokens, actual_pusd, pricing)

    async def _correct(
        self, adm: Admission, usage: TokenUsage, actual_pusd: int | None, pricing: str
    ) -> None:
        # An unknown actual cost keeps the whole reservation: never under-count.
        spent = adm.reserved_pusd if actual_pusd is None else actual_pusd
        if pricing == "provisioned":
            spent = 0
        try:
            await self._acc.shared.settle(
                adm.token_counters,
                usage.total - adm.token_estimate,
                adm.scopes,
                spent - adm.reserved_pusd,
                adm.at,
            )
        except SharedStateDown:
            # The reservation stays counted (errs towards refusing); the ledger has the truth.
            self._acc.warnings.redis_errors += 1

    def _record(
        self,
        call: Call,
        outcome: Outcome,
        usage: TokenUsage,
        cost_pusd: int | None,
        pricing: str,
        cost: Cost | None,
    ) -> LedgerRecord:
        error = outcome.error
        if outcome.error_class == "client_disconnected" and error is None:
            status = 499  # the client went away (nginx's convention)
        else:
            status = error.status if error is not None else 200
        finished = outcome.finished or time.monotonic()
        target = outcome.target
        savings = cost.cache_savings_usd if cost is not None else None
        return LedgerRecord(
            request_id=call.request_id,
            ts=time.time(),
            tenant=call.principal.tenant,
            key_id=call.principal.key_id,
            surface=call.surface,
            alias=outcome.alias,
            experiment=outcome.experiment if outcome.variant is not None else None,
            variant=outcome.variant,
            target=str(target) if target is not None else None,
            region=(target.region or self._region) if target and target.kind == "bedrock" else None,
            status=status,
            error_class=outcome.error_class,
            attempts=outcome.attempts,
            cache_hit=bool(call.context.get("cache_hit", False)),
            stream=call.stream,
            input_tokens=usage.input,
            output_tokens=usage.output,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write,
            cost_pusd=cost_pusd,
            pricing=pricing,
            cache_savings_pusd=None if savings is None else usd_to_pusd(savings),
            latency_ms=(finished - call.started) * 1000,
            upstream_ms=outcome.upstream_s * 1000,
            ttft_ms=None if outcome.ttft_s is None else outcome.ttft_s * 1000,
        )


def _tokens(usage: Usage | None) -> TokenUsage:
    if usage is None:
        return TokenUsage()
    return token_usage(
        usage.inputTokens,
        usage.outputTokens,
        usage.cacheReadInputTokens or 0,
        usage.cacheWriteInputTokens or 0,
        usage.totalTokens,
    )
