"""The Redis store (redis-py asyncio): budget counters move in one atomic Lua step each way, and
concurrent requests share round trips (router/state/batch.py).

Keys, under the configured prefix (``ROUTER_STATE_PREFIX``, default ``router:``):
``b:<budget>:<scope>:<limit>:<window>`` counters (integers: nano-dollars, tokens, requests), each expiring an
hour after its UTC window ends; ``l:<YYYYMMDD>`` the day's ledger, a hash of
``tenant<TAB>route<TAB>cluster<TAB>metric`` -> integer, kept ``LEDGER_KEEP_S``; ``c:<tenant>:<hash>`` cached
answers with their TTL. The reservation script checks every counter and then adds to every one, or adds
to none: any number of proxy replicas together can never pass a cap by more than the amounts reserved
by requests still in flight (which are settled to their real use when they finish).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from router.accounting.budgets import Counter
from router.state.base import Delta, Ledgers, Reserved
from router.state.batch import Batcher
from router.state.memory import LEDGER_KEEP_S

# Several requests' reservations in one call, each all-or-nothing, in order. KEYS: every request's
# counters, one request after another. ARGV: the number of requests, then per request the number of its
# counters and per counter (cap or -1, amount, expire_at). Returns per request: ok, the 1-based index of
# the counter without room (0), that counter's value, the number of values that follow, the values.
RESERVE = """
local out = {}
local a, k = 2, 1
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  a = a + 1
  local bad, used = 0, 0
  for i = 0, n - 1 do
    local cap = tonumber(ARGV[a + 3 * i])
    if cap >= 0 then
      local u = tonumber(redis.call('GET', KEYS[k + i]) or '0')
      if u + tonumber(ARGV[a + 3 * i + 1]) > cap then
        bad, used = i + 1, u
        break
      end
    end
  end
  if bad > 0 then
    out[#out + 1] = 0; out[#out + 1] = bad; out[#out + 1] = used; out[#out + 1] = 0
  else
    out[#out + 1] = 1; out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = n
    for i = 0, n - 1 do
      out[#out + 1] = redis.call('INCRBY', KEYS[k + i], ARGV[a + 3 * i + 1])
      redis.call('EXPIREAT', KEYS[k + i], ARGV[a + 3 * i + 2])
    end
  end
  a, k = a + 3 * n, k + n
end
return out
"""

# KEYS: n counters, then the ledger hash (if any). ARGV: n, per counter (delta, expire_at), then the
# ledger's expire_at and (field, value) pairs.
SETTLE = """
local n = tonumber(ARGV[1])
for i = 1, n do
  redis.call('INCRBY', KEYS[i], ARGV[2 * i])
  redis.call('EXPIREAT', KEYS[i], ARGV[2 * i + 1])
end
if #KEYS > n then
  local j = 2 * n + 3
  while j < #ARGV do
    redis.call('HINCRBY', KEYS[n + 1], ARGV[j], ARGV[j + 1])
    j = j + 2
  end
  redis.call('EXPIREAT', KEYS[n + 1], ARGV[2 * n + 2])
end
return 1
"""

Errors = (RedisError, OSError, TimeoutError)


class RedisStore:
    name = "redis"

    def __init__(self, url: str, prefix: str, timeout_s: float = 1.0, max_connections: int = 64) -> None:
        self.prefix = prefix
        # A blocking pool: a burst of requests waits (up to the timeout) for one of a bounded set of
        # connections, where redis-py's default pool raises "Too many connections" past its limit.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self.client: Any = aioredis.Redis(connection_pool=pool)
        # Callers wait here for a connection rather than in the pool, whose wait is bounded by the
        # timeout: under a burst, waiting for a turn must not look like Redis being away.
        self._turns = asyncio.Semaphore(max_connections)
        self._reservations: Batcher[list[Counter], Reserved] = Batcher(self._reserve_many, orphaned=self._undo)
        self._settlements: Batcher[tuple[list[Delta], Ledgers], None] = Batcher(self._settle_many)
        self._undoing: set[asyncio.Future[None]] = set()
        self._reserve = self.client.register_script(RESERVE)
        self._settle = self.client.register_script(SETTLE)

    @property
    def up(self) -> bool:
        return True

    def ledger_key(self, day: str) -> str:
        return f"{self.prefix}l:{day}"

    async def reserve(self, counters: Sequence[Counter]) -> Reserved:
        if not counters:
            return Reserved(True)
        return await self._reservations.submit(list(counters))

    async def _reserve_many(self, requests: list[list[Counter]]) -> list[Reserved]:
        keys: list[str] = []
        args: list[int] = [len(requests)]
        for counters in requests:
            args.append(len(counters))
            for c in counters:
                keys.append(c.key)
                args += [-1 if c.cap is None else c.cap, c.amount, c.expire_at]
        async with self._turns:
            raw = [int(v) for v in await self._reserve(keys=keys, args=args)]
        out, i = [], 0
        for _ in requests:
            ok, bad, used, n = raw[i : i + 4]
            values = tuple(raw[i + 4 : i + 4 + n])
            i += 4 + n
            out.append(Reserved(True, values=values) if ok else Reserved(False, bad - 1, used))
        return out

    def _undo(self, counters: list[Counter], result: Reserved) -> None:
        """A reservation made for a caller that was cancelled meanwhile: give it back."""
        if result.ok:
            task = asyncio.ensure_future(self.settle([(c.key, -c.amount, c.expire_at) for c in counters], {}))
            self._undoing.add(task)
            task.add_done_callback(self._undoing.discard)

    async def settle(self, deltas: Sequence[Delta], ledgers: Ledgers) -> None:
        """Add counter deltas and ledger fields (also used to replay what was counted while Redis was away).
        Concurrent settlements are summed into one call."""
        await self._settlements.submit((list(deltas), ledgers))

    async def _settle_many(self, items: list[tuple[list[Delta], Ledgers]]) -> list[None]:
        counters: dict[str, tuple[int, int]] = {}
        days: dict[str, dict[str, int]] = {}
        for deltas, ledgers in items:
            for key, delta, expire_at in deltas:
                counters[key] = (counters.get(key, (0, expire_at))[0] + delta, expire_at)
            for day, fields in ledgers.items():
                table = days.setdefault(day, {})
                for f, v in fields.items():
                    table[f] = table.get(f, 0) + v
        keys = [key for key, (d, _) in counters.items() if d]
        args: list[Any] = [len(keys)]
        for key in keys:
            args += [counters[key][0], counters[key][1]]
        ledger_days = [(d, f) for d, f in days.items() if f]
        async with self._turns:
            if not ledger_days:
                if keys:
                    await self._settle(keys=keys, args=args)
                return [None] * len(items)
            for i, (day, fields) in enumerate(ledger_days):
                k, a = (keys, list(args)) if i == 0 else ([], [0])
                a.append(self._ledger_expiry(day))
                for f, v in fields.items():
                    a += [f, v]
                await self._settle(keys=[*k, self.ledger_key(day)], args=a)
        return [None] * len(items)

    @staticmethod
    def _ledger_expiry(day: str) -> int:
        import datetime as dt

        start = dt.datetime(int(day[:4]), int(day[4:6]), int(day[6:8]), tzinfo=dt.UTC).timestamp()
        return int(start) + LEDGER_KEEP_S

    async def ledger(self, days: Sequence[str]) -> Mapping[str, Mapping[str, int]]:
        pipe = self.client.pipeline(transaction=False)
        for d in days:
            pipe.hgetall(self.ledger_key(d))
        results = await pipe.execute()
        return {d: {k.decode(): int(v) for k, v in r.items()} for d, r in zip(days, results, strict=True)}

    async def cache_get(self, key: str) -> bytes | None:
        async with self._turns:
            value = await self.client.get(key)
        return bytes(value) if value is not None else None

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        async with self._turns:
            await self.client.set(key, value, px=max(1, int(ttl_s * 1000)))

    async def server_id(self) -> str:
        """The server's run id: it changes when Redis restarts (and, with nothing persisted, forgets)."""
        info = await self.client.info("server")
        return str(info.get("run_id", ""))

    async def reset(self) -> None:
        """Drop every pooled connection (after an outage they point at a server that is gone)."""
        await self.client.connection_pool.disconnect()

    async def close(self) -> None:
        await self.client.aclose()
