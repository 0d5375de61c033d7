"""Admit stages: checks that may refuse a call before any upstream attempt.

An admit stage is any object with ``async def admit(self, call: Call) -> None`` that raises a
``StrataError`` (Forbidden, RateLimited, ...) to refuse. They run in the order the lifespan gives
them, after routing (``call.plan`` holds the alias, the targets and the policy, so a budget can
price the worst case) and before any upstream attempt. What a stage learns for later (a
reservation to settle, say) it keeps in ``call.context`` under its own name, for its settle hook
to find.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.pipeline.call import Call


class AdmitStage(Protocol):
    async def admit(self, call: Call) -> None: ...


async def admit_all(stages: Sequence[AdmitStage], call: Call) -> None:
    for stage in stages:
        await stage.admit(call)
