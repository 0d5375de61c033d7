"""The ``bedrock`` provider without aiobotocore on the hot path: Converse / ConverseStream over
one pooled aiohttp session, signed by botocore's SigV4Auth.

Callers see what ``BedrockProvider`` gives them: the same request and response shapes, the same
stream events, the same errors, each marked retryable as botocore "standard" mode would retry
it. Like that transport, it makes exactly one attempt per call; the pipeline's attempt stage
retries. aiobotocore is still used at start-up, for the credential chain and the service model.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import botocore
import orjson
from botocore.httpsession import ProxyConfiguration, create_urllib3_context, get_cert_path
from pydantic import ValidationError
from yarl import URL

from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.errors import StrataError, UpstreamError
from gateway.providers import bedrock_direct_pool as pool
from gateway.providers.base import BedrockOptions
from gateway.providers.bedrock_direct_signer import Signer
from gateway.providers.bedrock_direct_wire import (
    endpoint_for,
    operation_url,
    reply_error,
    signing_host,
    stream_event,
    transport_error,
)
from gateway.providers.bedrock_errors import FAILED
from gateway.targets import Target
from gateway.wire.blobs import Shapes, decode_body, encode_body, load_shapes
from gateway.wire.eventstream import EventStreamDecoder, EventStreamError

log = logging.getLogger("strata.bedrock")

_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


class DirectBedrockProvider:
    """One aiohttp session per region, opened in the app lifespan and reused."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        signer: Signer,
        shapes: Shapes,
        *,
        endpoint: str,
        proxy: str | None = None,
        fresh: aiohttp.ClientSession | None = None,
    ) -> None:
        self._http = http
        # One-shot connections for the one resend of a request a stale pooled connection lost.
        self._fresh = fresh or http
        self._signer = signer
        self._shapes = shapes
        self._endpoint = endpoint
        self._host = signing_host(endpoint)
        self._proxy = proxy

    @classmethod
    async def open(cls, stack: AsyncExitStack, options: BedrockOptions) -> DirectBedrockProvider:
        # Imported here so a gateway without Bedrock targets starts faster.
        from aiobotocore.session import get_session

        session = get_session()
        credentials = await session.get_credentials()
        shapes = load_shapes(await session.get_service_model("bedrock-runtime"))
        endpoint = endpoint_for(options.region, options.endpoint_url)
        http, fresh = _http_sessions(
            endpoint,
            ca_bundle=session.get_config_variable("ca_bundle"),
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            max_connections=options.max_connections,
            keepalive_s=options.keepalive,
        )
        await stack.enter_async_context(http)
        await stack.enter_async_context(fresh)
        return cls(
            http,
            Signer(credentials, options.region),
            shapes,
            endpoint=endpoint,
            # HTTPS_PROXY / NO_PROXY as botocore reads them, once rather than per request.
            proxy=ProxyConfiguration().proxy_url_for(endpoint) or None,
            fresh=fresh,
        )

    def ready(self) -> bool:
        return not self._http.closed

    async def converse(self, target: Target, request: ConverseRequest) -> ConverseResponse:
        _, raw = await self._send(target.model, "converse", self._body(request), stream=False)
        try:
            data = decode_body(orjson.loads(raw), self._shapes.response_blobs)
            return ConverseResponse.model_validate(data)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise _failed(UpstreamError(FAILED), exc) from exc

    async def invoke_model(self, model_id: str, body: bytes) -> bytes:
        _, raw = await self._send(model_id, "invoke", body, stream=False)
        return raw

    async def converse_stream(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        body = self._body(request)
        response, _ = await self._send(target.model, "converse-stream", body, stream=True)
        decoder = EventStreamDecoder()
        try:
            async for chunk in response.content.iter_any():
                for message in decoder.feed(chunk):
                    event = stream_event(message, self._shapes)
                    if event is not None:
                        yield event
            decoder.finish()
        except StrataError as exc:  # an exception frame, already translated
            _failed(exc, f"in-stream {exc.bedrock_code}")
            raise
        except _TRANSPORT_ERRORS as exc:
            raise _failed(transport_error(exc), exc) from exc
        except (EventStreamError, orjson.JSONDecodeError) as exc:
            raise _failed(UpstreamError(FAILED), exc) from exc
        finally:
            # Releases the pooled connection even when our caller went away mid-stream: an
            # unfinished response is closed, a finished one was already returned to the pool.
            response.close()

    def _body(self, request: ConverseRequest) -> bytes:
        try:
            return encode_body(request.model_dump(exclude_none=True), self._shapes.request_blobs)
        except TypeError as exc:
            raise _failed(UpstreamError(FAILED), exc) from exc

    async def _send(
        self, model_id: str, operation: str, body: bytes, *, stream: bool
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """One POST; returns a 2xx response, its body read unless ``stream``."""
        url, wire_url = operation_url(self._endpoint, model_id, operation)
        try:
            headers = await self._signer.headers(url, self._host, body)
        except StrataError as exc:
            _failed(exc, "credentials")
            raise
        try:
            response = await self._post(wire_url, body, headers)
            raw = b"" if stream and response.status < 300 else await response.read()
        except _TRANSPORT_ERRORS as exc:
            raise _failed(transport_error(exc), exc) from exc
        if response.status < 300:
            return response, raw
        error = reply_error(response.status, response.headers, raw)
        raise _failed(error, f"HTTP {response.status}")

    async def _post(
        self, wire_url: URL, body: bytes, headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        """The POST, sent once more on a new connection when a pooled one turns out to have
        been closed by the peer before it answered (the request was never processed)."""
        try:
            return await self._http.post(wire_url, data=body, headers=headers, proxy=self._proxy)
        except _TRANSPORT_ERRORS as exc:
            if not pool.resendable(exc):
                raise
            log.info(
                "bedrock: a kept-alive connection was closed unanswered (%s); resending on "
                "a new one",
                type(exc).__name__,
            )
        return await self._fresh.post(wire_url, data=body, headers=headers, proxy=self._proxy)


def _http_sessions(
    endpoint: str,
    *,
    ca_bundle: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
    keepalive_s: float,
) -> tuple[aiohttp.ClientSession, aiohttp.ClientSession]:
    """The pooled session every call uses, and its one-shot twin for resends."""
    ssl_context: Any = True
    if endpoint.startswith("https:"):
        # The trust store aiobotocore would use (AWS_CA_BUNDLE / ca_bundle, else certifi).
        ssl_context = create_urllib3_context()
        ssl_context.load_verify_locations(ca_bundle or get_cert_path(True))
    pooled = pool.PoolConnector(
        limit=max_connections, ssl=ssl_context, keepalive_timeout=keepalive_s
    )
    fresh = pool.fresh_connector(limit=max_connections, ssl=ssl_context)
    return _http_session(pooled, connect_timeout, read_timeout), _http_session(
        fresh, connect_timeout, read_timeout
    )


def _http_session(
    connector: aiohttp.BaseConnector, connect_timeout: float, read_timeout: float
) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(sock_connect=connect_timeout, sock_read=read_timeout),
        headers={
            "User-Agent": f"strata Botocore/{botocore.__version__}",
            "Accept-Encoding": "identity",
        },
        trust_env=False,  # the proxy is resolved once, in open()
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


def _failed(error: StrataError, cause: BaseException | str) -> StrataError:
    # The class name and code only: upstream messages can quote the request back.
    name = cause if isinstance(cause, str) else type(cause).__name__
    log.info("bedrock call failed: %s -> %s", name, type(error).__name__)
    return error
