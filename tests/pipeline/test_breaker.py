"""The circuit breaker's states, with a clock the test moves."""

from __future__ import annotations

from gateway.errors import UpstreamDenied, UpstreamRejected
from gateway.pipeline.breaker import Breaker, Breakers, is_failure
from gateway.pipeline.policy import BreakerPolicy
from gateway.providers.bedrock_errors import from_code, read_timeout
from gateway.targets import Target
from tests.pipeline.clock import Clock

POLICY = BreakerPolicy(failures=3, window_s=10, cooldown_s=5, error_rate=0.5, min_calls=10)


def test_opens_after_consecutive_failures_and_probes_once_after_cool_down() -> None:
    clock = Clock()
    breaker = Breaker(POLICY, clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record(failed=True)
    assert breaker.state == "closed"
    breaker.record(failed=False)  # a success resets the run
    for _ in range(3):
        assert breaker.allow()
        breaker.record(failed=True)
    assert breaker.state == "open"
    assert not breaker.allow()
    assert breaker.retry_after_s() == 5.0
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()  # the one probe
    assert breaker.state == "half_open"
    assert not breaker.allow() and not breaker.allow()  # nobody else while it is in flight
    breaker.record(failed=True)
    assert breaker.state == "open"  # a failed probe opens it for a new cool-down
    assert not breaker.allow()
    clock.now += 5.1
    assert breaker.allow()
    breaker.record(failed=False)
    assert breaker.state == "closed"
    assert all(breaker.allow() for _ in range(5))


def test_error_rate_over_the_window_opens_it() -> None:
    clock = Clock()
    breaker = Breaker(POLICY, clock)
    # Alternating: never three failures in a row, but half of ten calls failed.
    for i in range(10):
        assert breaker.allow()
        breaker.record(failed=i % 2 == 1)
        clock.now += 0.1
    assert breaker.state == "open"


def test_old_failures_leave_the_window() -> None:
    clock = Clock()
    breaker = Breaker(POLICY, clock)
    for i in range(8):
        breaker.record(failed=i % 2 == 0)
    clock.now += 11
    for _ in range(9):
        breaker.record(failed=False)
    breaker.record(failed=True)
    assert breaker.state == "closed"  # 1 of 10 in the window, not 5 of 18


def test_an_inconclusive_probe_lets_the_next_call_probe() -> None:
    clock = Clock()
    breaker = Breaker(POLICY, clock)
    for _ in range(3):
        breaker.record(failed=True)
    clock.now += 6
    assert breaker.allow()
    breaker.release()  # the probe was cancelled: no verdict
    assert breaker.allow()
    breaker.record(failed=False)
    assert breaker.state == "closed"


def test_what_counts_as_a_failure() -> None:
    assert is_failure(from_code("ServiceUnavailableException", ""))
    assert is_failure(from_code("InternalServerException", ""))
    assert is_failure(read_timeout())
    # The target answered: it is up, whatever it thought of the request.
    assert not is_failure(from_code("ThrottlingException", ""))
    assert not is_failure(UpstreamRejected("bad"))
    assert not is_failure(UpstreamDenied("no"))
    assert not is_failure(from_code("ResourceNotFoundException", ""))


def test_breakers_are_per_target_and_bounded() -> None:
    table = Breakers(limit=2)
    a, b = Target("bedrock", "a"), Target("bedrock", "b")
    assert table.get(a, POLICY) is table.get(a, POLICY)
    assert table.get(a, POLICY) is not table.get(b, POLICY)
    first = table.get(a, POLICY)
    table.get(b, POLICY)
    table.get(Target("bedrock", "c"), POLICY)  # a, least recently used, is dropped
    assert table.get(a, POLICY) is not first
