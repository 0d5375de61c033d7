"""Fault scripts for the Bedrock-wire fake: handlers that throttle a seeded share of calls, are
hard down, answer per model id, or answer late."""

from __future__ import annotations

import collections
import dataclasses
import random
import threading
from collections.abc import Callable

from tests.fakes.bedrock_wire import ERROR_STATUS, FakeRequest, Handler, Reply, echo_handler


def seeded_faults(
    rate: float,
    seed: int,
    code: str = "ThrottlingException",
    *,
    key: Callable[[FakeRequest], str] | None = None,
    then: Handler = echo_handler,
) -> Handler:
    """Fail a ``rate`` share of calls with ``code``, drawn from a generator seeded by ``seed``.

    With ``key`` (say, the prompt), the n-th call for a given key always gets the same draw, so
    which requests fail does not depend on the order concurrent calls arrive in; without it, the
    draws follow arrival order.
    """
    if code not in ERROR_STATUS:
        raise ValueError(f"unknown Bedrock error code {code!r}")
    shared = random.Random(seed)
    seen: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def handler(request: FakeRequest) -> Reply:
        with lock:
            if key is None:
                draw = shared.random()
            else:
                k = key(request)
                draw = random.Random(f"{seed}:{k}:{seen[k]}").random()
                seen[k] += 1
        if draw < rate:
            return Reply(error=code, error_message=f"scripted {code}")
        return then(request)

    return handler


def hard_down(code: str = "ServiceUnavailableException") -> Handler:
    """Every call fails with ``code``."""
    if code not in ERROR_STATUS:
        raise ValueError(f"unknown Bedrock error code {code!r}")
    return lambda request: Reply(error=code, error_message=f"scripted {code}")


def by_model(handlers: dict[str, Handler], default: Handler = echo_handler) -> Handler:
    """A script per model id (URL-decoded), ``default`` for the others."""
    return lambda request: handlers.get(request.model_id, default)(request)


def delayed(latency_s: float, then: Handler = echo_handler) -> Handler:
    """``then``'s reply, sent after ``latency_s`` (unless the reply sets its own latency)."""

    def handler(request: FakeRequest) -> Reply:
        reply = then(request)
        return reply if reply.latency_s else dataclasses.replace(reply, latency_s=latency_s)

    return handler
