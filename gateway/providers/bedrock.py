"""The ``bedrock`` provider's ``aiobotocore`` transport: bedrock-runtime Converse / ConverseStream.

aiobotocore is used directly (not through aioboto3, which only wraps it and pins an old botocore):
the gateway needs clients only, never boto3 resources.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from importlib.metadata import version
from typing import Any

from aiobotocore.config import AioConfig

from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.errors import StrataError
from gateway.providers.base import BedrockOptions
from gateway.providers.bedrock_errors import translate
from gateway.targets import Target

log = logging.getLogger("strata.bedrock")


class BedrockProvider:
    """One aiobotocore client per region, opened in the app lifespan and reused."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    async def open(cls, stack: AsyncExitStack, options: BedrockOptions) -> BedrockProvider:
        # Imported here so a gateway without Bedrock targets starts faster.
        from aiobotocore.session import get_session

        config = AioConfig(
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            max_pool_connections=options.max_connections,
            # One attempt per call: retries, backoff and deadlines are the pipeline's.
            retries={"mode": "standard", "total_max_attempts": 1},
            tcp_keepalive=True,
            connector_args={"keepalive_timeout": options.keepalive},
            # Pinned in code so botocore never switches to bearer auth when
            # AWS_BEARER_TOKEN_BEDROCK is in our environment (it may hold a key for the gateway
            # itself, not for AWS). Upstream auth is the standard credential chain.
            signature_version="v4",
            # A fixed User-Agent: botocore otherwise rebuilds it twice per call (~0.13 ms CPU,
            # measured in bench/README.md), at the price of its feature metadata.
            user_agent=f"strata/{version('strata')} botocore",
        )
        session = get_session()
        client = await stack.enter_async_context(
            session.create_client(
                "bedrock-runtime",
                region_name=options.region,
                endpoint_url=options.endpoint_url,
                config=config,
            )
        )
        return cls(client)

    def ready(self) -> bool:
        return True

    async def converse(self, target: Target, request: ConverseRequest) -> ConverseResponse:
        try:
            raw = await self._client.converse(modelId=target.model, **_params(request))
        except Exception as exc:
            raise _failed(exc) from exc
        raw.pop("ResponseMetadata", None)
        return ConverseResponse.model_validate(raw)

    async def invoke_model(self, model_id: str, body: bytes) -> bytes:
        try:
            raw = await self._client.invoke_model(
                modelId=model_id,
                body=body,
                contentType="application/json",
                accept="application/json",
            )
            async with raw["body"] as stream:
                return bytes(await stream.read())
        except Exception as exc:
            raise _failed(exc) from exc

    async def converse_stream(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        try:
            raw = await self._client.converse_stream(modelId=target.model, **_params(request))
        except Exception as exc:
            raise _failed(exc) from exc
        stream = raw["stream"]
        try:
            async for event in stream:
                yield event
        except Exception as exc:
            raise _failed(exc) from exc
        finally:
            # Releases the pooled connection even when our caller went away mid-stream.
            stream.close()


def _failed(exc: Exception) -> StrataError:
    error = translate(exc)
    # The class name and code only: botocore messages can quote the request back.
    log.info("bedrock call failed: %s -> %s", type(exc).__name__, type(error).__name__)
    return error


def _params(request: ConverseRequest) -> dict[str, Any]:
    return request.model_dump(exclude_none=True)
