"""Settle: every call ends here exactly once, with its ``Outcome``, whatever happened: success,
an error, a client that went away, a stream cut mid-way.

A settle hook is ``async def hook(call: Call, outcome: Outcome) -> None``. Hooks run in the
order the lifespan gives them; one that raises is logged and the others still run. A hook must
be quick: anything slow (a ledger write, a grader) should be queued to a worker the lifespan
owns. When the call's task is being cancelled (a client disconnect mid-stream), the hooks run in
a task of their own so that the cancellation cannot cut them short.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from gateway.pipeline.call import Call, Outcome

log = logging.getLogger("strata.settle")

SettleHook = Callable[[Call, Outcome], Awaitable[None]]


class Settle:
    def __init__(self, hooks: Sequence[SettleHook] = ()) -> None:
        self.hooks = list(hooks)
        self._pending: set[asyncio.Task[None]] = set()

    async def __call__(self, call: Call, outcome: Outcome) -> None:
        if outcome.finished is not None:
            return
        outcome.finished = time.monotonic()
        for hook in self.hooks:
            try:
                await hook(call, outcome)
            except Exception:
                log.exception("settle hook %r failed for request %s", hook, call.request_id)

    def in_background(self, call: Call, outcome: Outcome) -> None:
        """Settle from a task being cancelled: run the hooks in their own task."""
        if outcome.finished is not None:
            return
        task = asyncio.get_running_loop().create_task(self(call, outcome))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for background settles (the lifespan calls this at shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
