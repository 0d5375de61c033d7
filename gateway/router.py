"""Model name → ordered targets → provider call, with fallback before the first byte."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.errors import NotFound, StrataError, UpstreamError, UpstreamUnavailable
from gateway.providers.base import Provider
from gateway.targets import Kind, Target, looks_like_target, parse_target

log = logging.getLogger("strata.router")

MAX_VARIANT_DEPTH = 4


class VariantResolver(Protocol):
    def resolve(self, name: str) -> str | None:
        """The target string a variant points at, or None when there is no such variant."""
        ...


class Router:
    def __init__(
        self,
        aliases: Mapping[str, list[Target]],
        providers: Mapping[Kind, Provider],
        variants: VariantResolver | None = None,
    ) -> None:
        self._aliases = dict(aliases)
        self._providers = dict(providers)
        self._variants = variants

    @property
    def aliases(self) -> list[str]:
        return sorted(self._aliases)

    def targets(self, model: str) -> list[Target]:
        if model in self._aliases:
            chain = self._aliases[model]
        elif looks_like_target(model):
            chain = [parse_target(model)]
        else:
            raise NotFound(
                f"unknown model {model!r}; known aliases: {', '.join(self.aliases)} "
                "(or name a target such as bedrock:<modelId> or local:<base>)",
                param="model",
            )
        return [self._resolve(t) for t in chain]

    def _resolve(self, target: Target) -> Target:
        seen = 0
        while target.kind == "variant":
            seen += 1
            found = self._variants.resolve(target.model) if self._variants else None
            if found is None or seen > MAX_VARIANT_DEPTH:
                raise NotFound(f"unknown variant {target.model!r}", param="model")
            target = parse_target(found)
        return target

    def _provider(self, target: Target) -> Provider:
        provider = self._providers.get(target.kind)
        if provider is None:
            raise UpstreamUnavailable(f"the {target.kind} provider is not enabled")
        return provider

    async def converse(
        self, model: str, request: ConverseRequest
    ) -> tuple[Target, ConverseResponse]:
        chain = self.targets(model)
        for i, target in enumerate(chain):
            try:
                return target, await self._provider(target).converse(target, request)
            except StrataError as exc:
                if not _falls_back(exc, i, chain):
                    raise
                log.warning(
                    "target %s failed (%s); falling back to %s",
                    target,
                    type(exc).__name__,
                    chain[i + 1],
                )
        raise AssertionError("unreachable: the last target re-raises")

    async def converse_stream(
        self, model: str, request: ConverseRequest
    ) -> tuple[Target, AsyncIterator[StreamEvent]]:
        """Open a stream and wait for its first event, so that errors before any byte is sent
        become an HTTP error (or a fallback), not a broken stream."""
        chain = self.targets(model)
        for i, target in enumerate(chain):
            stream = self._provider(target).converse_stream(target, request)
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                first = None
            except StrataError as exc:
                await stream.aclose()
                if not _falls_back(exc, i, chain):
                    raise
                log.warning(
                    "target %s failed (%s); falling back to %s",
                    target,
                    type(exc).__name__,
                    chain[i + 1],
                )
                continue
            return target, _prepend(first, stream)
        raise AssertionError("unreachable: the last target re-raises")


def _falls_back(exc: StrataError, i: int, chain: list[Target]) -> bool:
    return i + 1 < len(chain) and isinstance(exc, UpstreamError) and exc.retryable


async def _prepend(
    first: StreamEvent | None, rest: AsyncIterator[StreamEvent]
) -> AsyncIterator[StreamEvent]:
    if first is not None:
        yield first
    async for event in rest:
        yield event
