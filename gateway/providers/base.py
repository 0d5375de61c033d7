"""The provider seam: everything behind the router speaks canonical Converse through this."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.targets import Target


@dataclass(frozen=True)
class BedrockOptions:
    """How either Bedrock transport reaches the runtime API (from settings and strata.yaml)."""

    region: str
    endpoint_url: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    max_connections: int = 256
    # Seconds an idle upstream connection stays pooled for reuse (the direct transport's).
    keepalive: float = 12.0


class Provider(Protocol):
    async def converse(self, target: Target, request: ConverseRequest) -> ConverseResponse: ...

    def converse_stream(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]: ...

    def ready(self) -> bool:
        """Whether it can serve now (clients open, default model loaded)."""
        ...
