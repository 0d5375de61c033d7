"""The ``bedrock`` provider as the pipeline sees it: one pooled client per region, each opened
on first use and closed by the lifespan's exit stack.

A target's region is its own (``bedrock@us-west-2:…``, or an ARN's region field), else the
configured default. Either transport (``direct`` or ``aiobotocore``) sits behind it; each makes
exactly one attempt per call, the pipeline's attempt stage owns retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.errors import InvalidRequest
from gateway.providers.base import BedrockOptions, Provider
from gateway.targets import Target

Opener = Callable[[AsyncExitStack, BedrockOptions], Awaitable[Provider]]


class RegionalBedrock:
    def __init__(self, stack: AsyncExitStack, options: BedrockOptions, opener: Opener) -> None:
        self._stack = stack
        self._options = options
        self._open = opener
        self._clients: dict[str, Provider] = {}
        self._opening: dict[str, asyncio.Future[Provider]] = {}

    @property
    def regions(self) -> list[str]:
        return sorted(self._clients)

    def region_of(self, target: Target) -> str:
        return target.region or self._options.region

    async def client(self, region: str) -> Provider:
        """The region's client; the first caller opens it, concurrent ones wait for it."""
        found = self._clients.get(region)
        if found is not None:
            return found
        future = self._opening.get(region)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._opening[region] = future
            try:
                client = await self._open(self._stack, replace(self._options, region=region))
            except BaseException as exc:
                del self._opening[region]  # the next call tries again
                future.set_exception(exc)
                future.exception()  # retrieved: waiters (if any) re-raise it themselves
                raise
            self._clients[region] = client
            del self._opening[region]
            future.set_result(client)
            return client
        return await asyncio.shield(future)

    def ready(self) -> bool:
        return all(client.ready() for client in self._clients.values())

    async def converse(self, target: Target, request: ConverseRequest) -> ConverseResponse:
        _refuse_options(request)
        client = self._clients.get(self.region_of(target)) or await self.client(
            self.region_of(target)
        )
        return await client.converse(target, request)

    async def invoke_model(self, model_id: str, body: bytes) -> bytes:
        """InvokeModel (JSON in, JSON out) in the default region: the semantic cache's
        Bedrock embedder."""
        client: Any = await self.client(self._options.region)
        return bytes(await client.invoke_model(model_id, body))

    def converse_stream(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        if request.options:
            return self._refusing(target, request)
        client = self._clients.get(self.region_of(target))
        if client is not None:  # the hot path: no extra generator layer per event
            return client.converse_stream(target, request)
        return self._opening_stream(target, request)

    async def _opening_stream(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        client = await self.client(self.region_of(target))
        async for event in client.converse_stream(target, request):
            yield event

    async def _refusing(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        # A generator, so the refusal surfaces where stream errors do: at the first event.
        _refuse_options(request)
        async for event in self._opening_stream(target, request):
            yield event


def _refuse_options(request: ConverseRequest) -> None:
    """OpenAI-only parameters (seed, response_format, logprobs, …) have no Converse field; a
    caller who asked for one must hear so rather than silently get an answer without it."""
    for name in request.options:
        raise InvalidRequest(
            f"{name}: not supported for Bedrock targets (Converse has no such field)", param=name
        )
