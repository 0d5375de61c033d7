"""The retry policy's pure parts: backoff schedule, Retry-After, deadline cut-off, budget."""

from __future__ import annotations

import random

import pytest

from gateway.errors import DeadlineExceeded, UpstreamRejected
from gateway.pipeline.policy import RetryPolicy
from gateway.pipeline.retry import (
    FastestRecent,
    RetryBudget,
    backoff_s,
    can_start,
    is_retryable,
    retry_delay_s,
)
from gateway.providers.bedrock_direct_wire import transport_error
from gateway.providers.bedrock_errors import from_code, parse_retry_after, read_timeout
from tests.pipeline.clock import Clock

POLICY = RetryPolicy(max_attempts=5, base_ms=50, cap_ms=400, budget_ratio=0.2)


def test_backoff_ceiling_doubles_then_caps() -> None:
    # rand() == 1 (just under) shows the ceiling; rand() == 0 the floor.
    ceilings = [backoff_s(n, POLICY, lambda: 1.0) for n in range(1, 7)]
    assert ceilings == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]
    assert all(backoff_s(n, POLICY, lambda: 0.0) == 0.0 for n in range(1, 7))
    # Huge retry numbers stay at the cap instead of overflowing.
    assert backoff_s(10_000, POLICY, lambda: 1.0) == 0.4


def test_backoff_is_full_jitter_over_the_whole_range() -> None:
    rng = random.Random(1)
    samples = [backoff_s(3, POLICY, rng.random) for _ in range(4000)]
    assert all(0.0 <= s <= 0.2 for s in samples)
    # Spread over [0, ceiling]: both ends are reached, the mean is in the middle.
    assert min(samples) < 0.01 and max(samples) > 0.19
    assert 0.09 < sum(samples) / len(samples) < 0.11


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("ThrottlingException", True),
        ("ModelNotReadyException", True),
        ("ServiceUnavailableException", True),
        ("InternalServerException", True),
        ("ValidationException", False),
        ("AccessDeniedException", False),
        ("ModelErrorException", False),
        ("ModelTimeoutException", False),
        ("ServiceQuotaExceededException", False),
        ("ResourceNotFoundException", False),
    ],
)
def test_only_retryable_codes_are_retried(code: str, retryable: bool) -> None:
    error = from_code(code, "m")
    assert is_retryable(error) is retryable
    assert (retry_delay_s(1, error, POLICY, lambda: 0.5) is not None) is retryable


def test_connection_errors_and_read_timeouts_are_retried() -> None:
    assert is_retryable(read_timeout())
    assert is_retryable(transport_error(ConnectionResetError()))
    assert is_retryable(transport_error(TimeoutError()))
    assert is_retryable(from_code("502", "", status=502))
    assert not is_retryable(DeadlineExceeded("late"))
    assert not is_retryable(UpstreamRejected("bad"))


def test_retry_after_is_honoured_and_too_long_a_wait_is_not_retried() -> None:
    asked = from_code("ThrottlingException", "", "0.3")
    assert asked.retry_after_s == pytest.approx(0.3)
    # Never sooner than asked, even when the jittered backoff is shorter...
    assert retry_delay_s(1, asked, POLICY, lambda: 0.0) == pytest.approx(0.3)
    # ...and the backoff wins when it is longer.
    assert retry_delay_s(4, asked, POLICY, lambda: 1.0) == pytest.approx(0.4)
    # A wait over the cap is not done inside a request: fall back or answer instead.
    assert retry_delay_s(1, from_code("ThrottlingException", "", "5"), POLICY) is None


def test_retry_after_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None


def test_deadline_cut_off() -> None:
    assert can_start(10.0, None, 5.0)
    assert can_start(10.0, 10.5, 0.4)
    assert not can_start(10.0, 10.5, 0.5)  # the backoff alone reaches the deadline
    assert not can_start(10.0, 10.5, 0.2, floor_s=0.3)  # and no answer comes that fast
    assert not can_start(11.0, 10.5, 0.0)


def test_fastest_recent_needs_evidence_and_forgets() -> None:
    speed = FastestRecent(keep=4)
    speed.add(0.5)
    speed.add(0.4)
    assert speed.floor_s() == 0.0
    speed.add(0.3)
    assert speed.floor_s() == 0.3
    for _ in range(4):
        speed.add(0.9)
    assert speed.floor_s() == 0.9


def test_budget_caps_retries_at_reserve_plus_ratio_of_first_attempts() -> None:
    clock = Clock()
    budget = RetryBudget(0.2, window_s=10.0, reserve=3, clock=clock)
    for _ in range(100):
        budget.record_first()
    spent = 0
    while budget.try_spend():
        spent += 1
    assert spent == 3 + 20
    budget.record_first()
    assert not budget.try_spend()  # 0.2 of a token is not a retry
    for _ in range(4):
        budget.record_first()
    assert budget.try_spend()  # five first attempts pay for one retry


def test_budget_window_slides() -> None:
    clock = Clock()
    budget = RetryBudget(0.5, window_s=10.0, reserve=0, clock=clock)
    for _ in range(10):
        budget.record_first()
    assert [budget.try_spend() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 5.0
    assert not budget.try_spend()  # the same window still
    clock.now += 6.0
    # The old first attempts and retries have left the window: nothing earned, nothing owed.
    assert budget.balance() == 0.0
    budget.record_first()
    budget.record_first()
    assert budget.try_spend()
    assert not budget.try_spend()


def test_budget_ratio_zero_allows_only_the_reserve() -> None:
    budget = RetryBudget(0.0, reserve=2, clock=Clock())
    for _ in range(1000):
        budget.record_first()
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]


def test_aiobotocore_connection_drops_are_retried_like_the_direct_transport() -> None:
    from botocore.exceptions import ConnectionClosedError, ParamValidationError

    from gateway.providers.bedrock_errors import translate

    assert is_retryable(translate(ConnectionClosedError(endpoint_url="http://x")))
    assert not is_retryable(translate(ParamValidationError(report="bad")))
