"""Small pure pieces: budget periods, the input bound, money."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gateway.accounting.budgets import BudgetScope
from gateway.accounting.money import pusd_to_usd, usd_text, usd_to_pusd
from gateway.accounting.stage import input_bound
from gateway.canonical import ConverseRequest


def test_monthly_budget_counters_roll_over_and_expire() -> None:
    scope = BudgetScope("tenant", "acme", 10, "monthly")
    nov = datetime(2026, 11, 30, 23, 0, tzinfo=UTC).timestamp()
    dec = datetime(2026, 12, 1, 0, 30, tzinfo=UTC).timestamp()
    assert scope.counter(nov) == "tenant:acme:2026-11"
    assert scope.counter(dec) == "tenant:acme:2026-12"
    assert scope.since(dec) == datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    # Lives to the end of its month plus a week.
    assert 7 * 86400 < scope.ttl_s(nov) < 7 * 86400 + 3600
    total = BudgetScope("key", "k", 10, "total")
    assert total.counter(nov) == total.counter(dec) == "key:k:total"
    assert total.since(dec) == 0.0 and total.ttl_s(dec) == 0


def test_input_bound_covers_text_bytes_and_other_blocks() -> None:
    request = ConverseRequest.model_validate(
        {
            "system": [{"text": "be brief"}],
            "messages": [
                {"role": "user", "content": [{"text": "héllo"}]},  # 6 UTF-8 bytes
                {"role": "assistant", "content": [{"text": "ok"}]},
                {
                    "role": "user",
                    "content": [{"image": {"format": "png", "source": {"bytes": "QUJD" * 100}}}],
                },
            ],
        }
    )
    bound = input_bound(request)
    assert bound >= len("be brief") + 6 + 2 + 400 + 3 * 8
    assert bound < 1000  # a bound, not a wild guess


def test_money_is_exact_pico_usd() -> None:
    assert usd_to_pusd(Decimal("0.000000000001")) == 1
    assert usd_to_pusd(Decimal("50")) == 50 * 10**12
    assert pusd_to_usd(21_000) == Decimal("0.000000021")
    assert usd_text(pusd_to_usd(50 * 10**12)) == "50"
    assert usd_text(Decimal("-0")) == "0" and usd_text(None) is None
