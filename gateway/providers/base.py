"""The provider seam: everything behind the router speaks canonical Converse through this."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.targets import Target


class Provider(Protocol):
    async def converse(self, target: Target, request: ConverseRequest) -> ConverseResponse: ...

    def converse_stream(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]: ...

    def ready(self) -> bool:
        """Whether it can serve now (clients open, default model loaded)."""
        ...
