"""Polling until a long AWS operation reaches an end state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from customize.errors import OperationFailed

T = TypeVar("T")


def wait_for(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    interval: float,
    on_update: Callable[[T], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``fetch`` every ``interval`` seconds until ``done``; returns the final state."""
    started = clock()
    while True:
        state = fetch()
        on_update(state)
        if done(state):
            return state
        if timeout is not None and clock() - started >= timeout:
            raise OperationFailed(
                f"gave up waiting after {timeout:g}s; the operation is still running"
            )
        sleep(interval)
