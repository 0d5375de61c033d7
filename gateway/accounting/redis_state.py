"""The Redis connection shared by limits and budgets, with its fault policy's bookkeeping.

Every Redis call goes through ``RedisState.run``: a failure marks Redis down for
``retry_after_s`` (calls meanwhile fail at once instead of waiting on a dead socket), counts a
warning metric and raises ``SharedStateDown``; the caller applies its ``open|closed`` policy.
The next call after the pause tries Redis again, so service recovers without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger("strata.accounting.redis")

T = TypeVar("T")


class SharedStateDown(Exception):
    """Redis could not be reached (or is in its pause after a failure)."""


class RedisState:
    def __init__(
        self,
        url: str,
        prefix: str = "strata:",
        retry_after_s: float = 0.5,
        timeout_s: float = 5.0,
    ) -> None:
        # Bounded waits, so a request never hangs on Redis and the fault policy decides. Not
        # too short: under load the event loop itself delays replies by hundreds of ms, and a
        # timeout there would wrongly apply the policy (open: unlimited calls) to a live Redis.
        # A refused connection (Redis stopped) fails at once whatever the timeout.
        # At most 32 connections: each script is short, so a burst queues on the pool rather
        # than opening a connection per call (a connection storm that itself times out).
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=32,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=5,
        )
        self.client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        # The pool ``exchange`` draws from: the same bounds, but no per-read/per-write socket
        # timeout (named: redis-py would default it to the connect timeout), since one
        # deadline covers each whole exchange.
        self._exchange_pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=32,
            timeout=timeout_s,
            socket_timeout=None,
            socket_connect_timeout=timeout_s,
            health_check_interval=5,
        )
        self._timeout_s = timeout_s
        self.prefix = prefix
        self._retry_after_s = retry_after_s
        self._down_until = 0.0
        self.errors = 0  # the warning metric: failed Redis calls since start

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def script(self, source: str) -> Any:
        return self.client.register_script(source)

    async def exchange(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one write and read their replies in order (an error reply is
        returned, not raised), on a pooled connection, under one deadline for the whole
        exchange. Every admitted call makes one: redis-py's pipeline packs in Python and arms
        a timer and a task per read and write, ~100 µs more CPU per call on loopback.

        A deadline or a cancellation mid-way drops the connection (redis-py disconnects on
        any exception inside a send or a read), so no late reply is ever read as another's."""
        packed = b"".join([hiredis.pack_command(command) for command in commands])
        pool = self._exchange_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py's
        try:
            async with asyncio.timeout(self._timeout_s):
                await conn.send_packed_command(packed)
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await conn.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
        finally:
            await pool.release(conn)
        return replies

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        if now < self._down_until:
            raise SharedStateDown("Redis is unreachable")
        try:
            result = await call()
        except (RedisError, OSError) as exc:
            self.errors += 1
            if self._down_until == 0.0 or self.errors % 100 == 1:
                log.warning("Redis unreachable (%r); applying the on_redis_error policy", exc)
            self._down_until = time.monotonic() + self._retry_after_s
            # The idle pooled connections died with the server too: drop them, so the first
            # calls after it returns get fresh ones instead of failing one stale socket each.
            for pool in (self.client.connection_pool, self._exchange_pool):
                with contextlib.suppress(RedisError, OSError):
                    await pool.disconnect(inuse_connections=False)
            raise SharedStateDown("Redis is unreachable") from exc
        if self._down_until:
            log.info("Redis reachable again")
            self._down_until = 0.0
        return result

    async def close(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()
        await self._exchange_pool.disconnect()
