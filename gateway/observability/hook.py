"""The one settle hook of observability: builds the call's ``CallRecord`` once (pricing it with
accounting's price table, as the ledger does) and hands it to the core and to each sink."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from gateway.accounting.money import usd_to_pusd
from gateway.accounting.prices import PriceTable

# The ledger's own helpers, so that metrics and ledger price a call identically.
from gateway.accounting.stage import _tokens as usage_of
from gateway.accounting.stage import price_key
from gateway.observability.metrics import MetricsCore
from gateway.observability.record import CallRecord, build
from gateway.pipeline.call import Call, Outcome

log = logging.getLogger("strata.observability")

Sink = Callable[[Call, CallRecord], None]
# Where the pipeline notes the upstream's stop reason (converse and streams alike).
FINISH = "finish_reason"


class ObservabilitySettle:
    def __init__(
        self, core: MetricsCore, prices: PriceTable | None, sinks: Sequence[Sink] = ()
    ) -> None:
        self.core = core
        self._prices = prices
        self._sinks = list(sinks)

    async def __call__(self, call: Call, outcome: Outcome) -> None:
        rec = build(call, outcome, *self._cost(outcome), call.context.get(FINISH))
        self.core.record(rec)
        for sink in self._sinks:
            try:
                sink(call, rec)
            except Exception:  # one broken sink must not cost the others their record
                log.exception("observability sink %r failed", sink)

    def _cost(self, outcome: Outcome) -> tuple[int | None, int]:
        usage = usage_of(outcome.usage)
        if not usage.total:
            return 0, 0
        if outcome.target is None or self._prices is None:
            return None, 0
        cost = self._prices.cost(price_key(outcome.target), usage)
        saved = 0 if cost.cache_savings_usd is None else usd_to_pusd(cost.cache_savings_usd)
        return (None if cost.usd is None else usd_to_pusd(cost.usd)), saved
