"""The shared counters one call's admission touches: its rate limits and its budgets, checked
and taken together in one step, corrected together at settle.

With Redis each step is one Lua script (one round trip, atomic across replicas): admission
checks every rate-limit window and every budget counter first and takes from them only if all
allow the call, so a call refused by its budget has spent none of its rate limit. Without
Redis the same rules run in this process (``LocalLimiter``, ``LocalBudgets``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from redis.exceptions import NoScriptError

from gateway.accounting.budgets import BudgetScope, LocalBudgets, Refusal, SpentFn
from gateway.accounting.limits import WINDOW_S, Check, Decision, LocalLimiter, retry_after
from gateway.accounting.redis_state import RedisState, SharedStateDown


@dataclass(frozen=True)
class Admitted:
    """``limits`` refused the call when not allowed; else ``budget`` may have refused it."""

    limits: Decision
    budget: Refusal | None = None

    @property
    def allowed(self) -> bool:
        return self.limits.allowed and self.budget is None


class Counters(Protocol):
    async def admit(
        self, checks: list[Check], scopes: list[BudgetScope], amount_pusd: int, at: float
    ) -> Admitted:
        """Take ``checks``' costs and reserve ``amount_pusd`` on ``scopes``, or nothing."""
        ...

    async def settle(
        self,
        token_counters: list[str],
        token_delta: int,
        scopes: list[BudgetScope],
        budget_delta: int,
        at: float,
    ) -> None:
        """Correct token counters by ``token_delta`` and the budgets reserved at ``at``."""
        ...

    async def drain(self) -> None:
        """Wait until every correction made so far has reached the counters."""
        ...


class LocalCounters:
    def __init__(self, spent: SpentFn) -> None:
        self.limiter = LocalLimiter()
        self.budgets = LocalBudgets(spent)

    async def admit(
        self, checks: list[Check], scopes: list[BudgetScope], amount_pusd: int, at: float
    ) -> Admitted:
        decision = await self.limiter.acquire(checks)
        if not decision.allowed or not scopes:
            return Admitted(decision)
        refusal = await self.budgets.reserve(scopes, amount_pusd)
        if refusal is not None:
            for check in checks:  # refused: give back what the limits took
                await self.limiter.adjust(check.counter, -check.cost)
        return Admitted(decision, refusal)

    async def settle(
        self,
        token_counters: list[str],
        token_delta: int,
        scopes: list[BudgetScope],
        budget_delta: int,
        at: float,
    ) -> None:
        if token_delta:
            for counter in token_counters:
                await self.limiter.adjust(counter, token_delta)
        if scopes and budget_delta:
            await self.budgets.settle(scopes, budget_delta, at)

    async def drain(self) -> None:
        return None  # settles apply at once here


# ARGV: window, #limits, amount, then (limit, cost) per limit, then (limit, ttl, seed) per
# budget. KEYS: the limits' hashes of one-second buckets, then the budget counters.
# Returns {status, index, now, used-json, live-json}: 1 taken; 0 limit `index` refused;
# 2 budget `index` refused (now = its use); -1 budget `index` needs seeding from the ledger.
_ADMIT = """
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now = sec + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local nl = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local b0 = 4 + 2 * nl
local used = {}
for i = 1, nl do
  local limit = tonumber(ARGV[2 + 2 * i])
  local cost = tonumber(ARGV[3 + 2 * i])
  local h = redis.call('HGETALL', KEYS[i])
  local sum = 0
  local live = {}
  for j = 1, #h, 2 do
    local s = tonumber(h[j])
    if s < sec - window then
      redis.call('HDEL', KEYS[i], h[j])
    else
      sum = sum + tonumber(h[j + 1])
      live[#live + 1] = h[j] .. ':' .. h[j + 1]
    end
  end
  used[i] = sum
  if sum + cost > limit then
    return {0, i, tostring(now), cjson.encode(used), cjson.encode(live)}
  end
end
for j = 1, #KEYS - nl do
  local k = KEYS[nl + j]
  local a = b0 + 3 * (j - 1)
  if redis.call('EXISTS', k) == 0 then
    if ARGV[a + 2] == '' then return {-1, j, '', '[]', '[]'} end
    redis.call('SET', k, ARGV[a + 2], 'NX')
  end
  local u = tonumber(redis.call('GET', k))
  if u + amount > tonumber(ARGV[a]) then return {2, j, tostring(u), '[]', '[]'} end
end
for i = 1, nl do
  redis.call('HINCRBY', KEYS[i], sec, tonumber(ARGV[3 + 2 * i]))
  redis.call('EXPIRE', KEYS[i], window + 2)
end
for j = 1, #KEYS - nl do
  local k = KEYS[nl + j]
  redis.call('INCRBY', k, amount)
  local ttl = tonumber(ARGV[b0 + 3 * (j - 1) + 1])
  if ttl > 0 then redis.call('EXPIRE', k, ttl) end
end
return {1, 0, tostring(now), cjson.encode(used), '[]'}
"""

# ARGV: window, #token counters, token delta, budget delta. KEYS: token hashes, then budgets.
_SETTLE = """
local sec = tonumber(redis.call('TIME')[1])
local nl = tonumber(ARGV[2])
for i = 1, nl do
  redis.call('HINCRBY', KEYS[i], sec, tonumber(ARGV[3]))
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1]) + 2)
end
for j = nl + 1, #KEYS do
  if redis.call('EXISTS', KEYS[j]) == 1 then redis.call('INCRBY', KEYS[j], ARGV[4]) end
end
return 1
"""


# How long a settle correction may wait for the next admission to carry it (one round trip
# for both) before it is sent on its own.
LINGER_S = 0.05

Entry = tuple[Any, list[str], list[Any]]  # script, keys, args


class RedisCounters:
    """Counters shared by every replica; ``admit`` raises ``SharedStateDown`` when Redis is
    away. Settle corrections are queued after the call has answered and ride along with the
    next admission, in one exchange before its script (so it sees them), or go out together
    after ``LINGER_S``: a delayed correction only keeps a reservation counted a little longer.
    Sequential calls thus make one round trip each instead of three (the admission, the
    correction, and redis-py's ``SCRIPT EXISTS`` before every pipeline of scripts).
    """

    def __init__(self, state: RedisState, spent: SpentFn) -> None:
        self._state = state
        self._spent = spent
        self._admit = state.script(_ADMIT)
        self._settle = state.script(_SETTLE)
        self._queued: list[tuple[list[str], list[Any]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self.dropped = 0  # corrections lost to a Redis outage (reservations stay counted)

    def _keys(self, checks: list[Check], scopes: list[BudgetScope], at: float) -> list[str]:
        key = self._state.key
        return [key("rl", c.counter) for c in checks] + [
            key("budget", s.counter(at)) for s in scopes
        ]

    async def admit(
        self, checks: list[Check], scopes: list[BudgetScope], amount_pusd: int, at: float
    ) -> Admitted:
        keys = self._keys(checks, scopes, at)
        seeds = ["" for _ in scopes]
        for _ in range(len(scopes) + 1):
            args: list[object] = [WINDOW_S, len(checks), amount_pusd]
            for c in checks:
                args += [c.limit, c.cost]
            for scope, seed in zip(scopes, seeds, strict=True):
                args += [scope.limit_pusd, scope.ttl_s(at), seed]
            status, index, now, used_json, live_json = await self._admit_with_corrections(
                keys, args
            )
            status, index = int(status), int(index)
            used = [int(u) for u in orjson.loads(used_json) or []]
            if status == 1:
                return Admitted(Decision(True, checks, used))
            if status == 0:
                buckets = []
                for item in orjson.loads(live_json) or []:
                    second, count = str(item).split(":")
                    buckets.append((int(second), int(count)))
                i = index - 1
                wait = retry_after(buckets, used[i], checks[i], float(now))
                return Admitted(Decision(False, checks, used, i, wait))
            scope = scopes[index - 1]
            if status == 2:
                return Admitted(Decision(True, checks, used), Refusal(scope, int(float(now))))
            # A budget counter that does not exist yet: seed it from the ledger, go again.
            seeds[index - 1] = str(await self._spent(scope, scope.since(at)))
        raise AssertionError("unreachable: every counter is seeded after one round each")

    async def _admit_with_corrections(self, keys: list[str], args: list[Any]) -> Any:
        queued, self._queued = self._queued, []
        entries: list[Entry] = [(self._settle, k, a) for k, a in queued]
        entries.append((self._admit, keys, args))
        try:
            results = await self._state.run(lambda: self._scripts(entries))
        except SharedStateDown:
            self.dropped += len(queued)
            raise
        return results[-1]

    async def _load_scripts(self) -> None:
        # Both at once, always: an exchange then never finds one script known and the other
        # not, which would run an admission before the corrections queued ahead of it.
        for script in (self._admit, self._settle):
            await self._state.client.script_load(script.script)

    async def _scripts(self, entries: list[Entry]) -> list[Any]:
        """Run scripts by their sha in one exchange; when Redis no longer knows them
        (restarted, flushed: every entry fails alike), they are loaded and the entries that
        failed sent again, in order."""
        results: list[Any] = [None] * len(entries)
        todo = list(range(len(entries)))
        for attempt in range(2):
            replies = await self._state.exchange(
                [
                    (
                        "EVALSHA",
                        entries[i][0].sha,
                        len(entries[i][1]),
                        *entries[i][1],
                        *entries[i][2],
                    )
                    for i in todo
                ]
            )
            missing = []
            for i, reply in zip(todo, replies, strict=True):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    missing.append(i)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    results[i] = reply
            if not missing:
                break
            await self._load_scripts()
            todo = missing
        return results

    async def settle(
        self,
        token_counters: list[str],
        token_delta: int,
        scopes: list[BudgetScope],
        budget_delta: int,
        at: float,
    ) -> None:
        counters = token_counters if token_delta else []
        budgets = scopes if budget_delta else []
        if not counters and not budgets:
            return
        key = self._state.key
        keys = [key("rl", c) for c in counters] + [key("budget", s.counter(at)) for s in budgets]
        self._queued.append((keys, [WINDOW_S, len(counters), token_delta, budget_delta]))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LINGER_S, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        if self._queued and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.create_task(self._flush(), name="strata-counters-settle")

    async def _flush(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            entries: list[Entry] = [(self._settle, k, a) for k, a in batch]
            try:
                await self._state.run(lambda entries=entries: self._scripts(entries))  # type: ignore[misc]
            except SharedStateDown:
                self.dropped += len(batch)

    async def drain(self) -> None:
        """Send every queued correction (the lifespan calls this at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._flushing is not None and not self._flushing.done():
            await self._flushing
        if self._queued:
            await self._flush()
