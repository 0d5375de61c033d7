"""``RedisState.exchange``, the one round trip every admitted call makes: replies in order,
error replies returned rather than raised, and a deadline that drops the connection so that a
late reply is never read as the next exchange's."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.exceptions import NoScriptError

from gateway.accounting.redis_state import RedisState
from tests.accounting.conftest import REDIS_URL


def test_replies_come_back_in_order_with_errors_in_place() -> None:
    async def main() -> list[object]:
        state = RedisState(REDIS_URL, timeout_s=5.0)
        try:
            return await state.exchange(
                [("PING",), ("EVALSHA", "0" * 40, 0), ("ECHO", "after the error")]
            )
        finally:
            await state.close()

    pong, missing, echo = asyncio.run(main())
    assert pong == b"PONG"
    assert isinstance(missing, NoScriptError)
    assert echo == b"after the error"


def test_a_deadline_drops_the_connection_and_the_late_reply_with_it() -> None:
    key = f"strata-test:{secrets.token_hex(6)}:empty"

    async def main() -> list[object]:
        state = RedisState(REDIS_URL, timeout_s=0.2)
        try:
            # BLPOP on an empty list answers (nil) after 5 s, long after the deadline; only
            # this connection waits, not the shared Redis.
            with pytest.raises(TimeoutError):
                await state.exchange([("BLPOP", key, 5)])
            # Were the timed-out connection lent again, this would read BLPOP's late (nil).
            return await state.exchange([("ECHO", "mine")])
        finally:
            await state.close()

    assert asyncio.run(main()) == [b"mine"]
