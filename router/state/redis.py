"""The Redis store (redis-py asyncio): budget leases open and close in one atomic Lua step each
(router/state/scripts.py), every write guarded by its id, and concurrent requests share round trips
(router/state/batch.py).

Keys, under the configured prefix (``ROUTER_STATE_PREFIX``, default ``router:``): the counters, leases,
index and id bits of router/state/scripts.py; ``l:<YYYYMMDD>`` the day's ledger, a hash of
``tenant<TAB>route<TAB>cluster<TAB>metric`` -> integer, kept ``LEDGER_KEEP_S``; ``l:<YYYYMMDDHH>`` the
same by hour and ``l:<YYYYMMDDHH>v`` the pools' own figures (router.accounting.ledger), kept
``HOURLY_KEEP_S``; ``c:<tenant>:<hash>`` cached answers with their TTL. The reservation checks every
counter and then adds to every one, or adds to none: any number of proxy replicas together can never
pass a cap by more than the amounts reserved by requests still in flight (which are settled to their
real use when they finish, or reaped when their lease expires).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from router.accounting.budgets import Final
from router.state import scripts
from router.state.base import SEP, CounterCheck, Lease, Ledgers, Reserved, Snapshot, unanswered
from router.state.batch import Batcher
from router.state.memory import APPLIED_KEEP_S, HOURLY_KEEP_S, LEDGER_KEEP_S

CHUNK_BITS = 20  # sequence numbers per bits key: 2**20 (two bits each: 256 KiB)
REAP_MOST = 200


def bits(prefix: str, id_: str) -> tuple[str, int]:
    """The bits key and offset of an id ``<replica>:<seq>``: applied at the offset, closed just after."""
    replica, _, seq = id_.rpartition(":")
    n = int(seq)
    return f"{prefix}a:{replica}:{n >> CHUNK_BITS}", (n & ((1 << CHUNK_BITS) - 1)) * 2


def _meta(budget: str, scope: str, limit: str, window: str) -> str:
    return SEP.join((budget, scope, limit, window))


Errors = (RedisError, OSError, TimeoutError)


class RedisStore:
    name = "redis"

    def __init__(self, url: str, prefix: str, timeout_s: float = 1.0, max_connections: int = 64) -> None:
        self.prefix = prefix
        self.expect = ""  # the marker every write checks for ("": none; see router/state/scripts.py)
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
        self._reservations: Batcher[tuple[Lease, bool], Reserved] = Batcher(self._reserve_many, orphaned=self._undo)
        self._settlements: Batcher[tuple[Lease, Sequence[Final], bool], None] = Batcher(self._settle_many)
        self._touches: Batcher[tuple[str, int], bytes | None] = Batcher(self._touch_many)
        self._undoing: set[asyncio.Future[None]] = set()
        self._reserve = self.client.register_script(scripts.RESERVE)
        self._settle = self.client.register_script(scripts.SETTLE)
        self._reap = self.client.register_script(scripts.REAP)
        self._snapshot = self.client.register_script(scripts.SNAPSHOT)
        self._record = self.client.register_script(scripts.RECORD)

    @property
    def up(self) -> bool:
        return True

    def ledger_key(self, day: str) -> str:
        return f"{self.prefix}l:{day}"

    async def reserve(self, lease: Lease, force: bool = False) -> Reserved:
        if not lease.counters:
            return Reserved(True)
        return await self._reservations.submit((lease, force))

    async def _reserve_many(self, requests: list[tuple[Lease, bool]]) -> list[Reserved]:
        args: list[Any] = [self.prefix, APPLIED_KEEP_S, self.expect, len(requests)]
        for lease, force in requests:
            key, offset = bits(self.prefix, lease.id)
            args += [lease.id, key, offset, lease.expires_at, int(force), len(lease.counters)]
            for c in lease.counters:
                meta = _meta(c.budget, c.scope, c.limit, c.window)
                args += [c.key, -1 if c.cap is None else c.cap, c.amount, c.expire_at, c.unanswered, meta]
        async with self._turns:
            raw = [int(v) for v in await self._reserve(keys=[], args=args)]
        out, i = [], 0
        for _ in requests:
            ok, bad, used, n = raw[i : i + 4]
            values = tuple(raw[i + 4 : i + 4 + n])
            i += 4 + n
            out.append(Reserved(True, values=values) if ok else Reserved(False, bad - 1, used))
        return out

    def _undo(self, item: tuple[Lease, bool], result: Reserved) -> None:
        """A reservation made for a caller that was cancelled meanwhile: release it."""
        lease = item[0]
        if result.ok:
            task = asyncio.ensure_future(self.settle(lease, unanswered(lease), release=True))
            self._undoing.add(task)
            task.add_done_callback(self._undoing.discard)

    async def settle(self, lease: Lease, finals: Sequence[Final], release: bool = False) -> None:
        """Close a lease (concurrent settlements share one call; each is applied once, by its id)."""
        if lease.counters:
            await self._settlements.submit((lease, finals, release))

    async def _settle_many(self, items: list[tuple[Lease, Sequence[Final], bool]]) -> list[None]:
        args: list[Any] = [self.prefix, APPLIED_KEEP_S, self.expect, len(items)]
        for lease, finals, release in items:
            key, offset = bits(self.prefix, lease.id)
            args += [lease.id, key, offset, int(release), len(lease.counters)]
            for c, f in zip(lease.counters, finals, strict=True):
                args += [
                    c.key,
                    c.amount,
                    f.final,
                    f.unanswered,
                    c.expire_at,
                    _meta(c.budget, c.scope, c.limit, c.window),
                ]
        async with self._turns:
            await self._settle(keys=[], args=args)
        return [None] * len(items)

    async def record(self, batch: str, ledgers: Ledgers) -> None:
        days = [(d, f) for d, f in ledgers.items() if f]
        if not days:
            return
        key, offset = bits(self.prefix, batch)
        args: list[Any] = [self.prefix, APPLIED_KEEP_S, self.expect, key, offset, len(days)]
        for day, fields in days:
            args += [self.ledger_key(day), self._ledger_expiry(day), len(fields)]
            for f, v in fields.items():
                args += [f, v]
        async with self._turns:
            await self._record(keys=[], args=args)

    async def reap(self, now: float) -> int:
        async with self._turns:
            return int(await self._reap(keys=[], args=[self.prefix, int(now), REAP_MOST]))

    async def snapshot(self, now: float) -> Snapshot:
        async with self._turns:
            raw = await self._snapshot(keys=[], args=[self.prefix, int(now)])
        checks = []
        for i in range(2, len(raw), 5):
            key, meta, value, settled, open_ = raw[i : i + 5]
            parts = (meta.decode() if isinstance(meta, bytes) else str(meta)).split(SEP)
            budget, scope, limit, window = ([*parts, "", "", "", ""])[:4]
            k = key.decode() if isinstance(key, bytes) else str(key)
            checks.append(CounterCheck(k, budget, scope, limit, window, int(value), int(settled), int(open_)))
        return Snapshot(tuple(sorted(checks, key=lambda c: c.key)), int(raw[0]), int(raw[1]))

    @staticmethod
    def _ledger_expiry(day: str) -> int:
        start = dt.datetime(int(day[:4]), int(day[4:6]), int(day[6:8]), tzinfo=dt.UTC).timestamp()
        return int(start) + (LEDGER_KEEP_S if len(day) == 8 else HOURLY_KEEP_S)

    async def ledger(self, days: Sequence[str]) -> Mapping[str, Mapping[str, int]]:
        pipe = self.client.pipeline(transaction=False)
        for d in days:
            pipe.hgetall(self.ledger_key(d))
        results = await pipe.execute()
        return {d: {k.decode(): int(v) for k, v in r.items()} for d, r in zip(days, results, strict=True)}

    async def cache_get(self, key: str, refresh_s: float | None = None) -> bytes | None:
        if refresh_s is not None:  # read it and start its time to live again; concurrent ones share a trip
            return await self._touches.submit((key, max(1, int(refresh_s * 1000))))
        async with self._turns:
            value = await self.client.get(key)
        return bytes(value) if value is not None else None

    async def _touch_many(self, items: list[tuple[str, int]]) -> list[bytes | None]:
        async with self._turns:
            pipe = self.client.pipeline(transaction=False)
            for key, px in items:
                pipe.getex(key, px=px)
            values = await pipe.execute()
        return [bytes(v) if v is not None else None for v in values]

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        async with self._turns:
            await self.client.set(key, value, px=max(1, int(ttl_s * 1000)))

    async def log_push(self, key: str, value: bytes, cap: int, ttl_s: float) -> None:
        async with self._turns:
            pipe = self.client.pipeline(transaction=True)
            pipe.lpush(key, value)
            pipe.ltrim(key, 0, cap - 1)
            pipe.pexpire(key, max(1, int(ttl_s * 1000)))
            await pipe.execute()

    async def log_read(self, key: str, limit: int) -> list[bytes]:
        async with self._turns:
            values = await self.client.lrange(key, 0, limit - 1)
        return [bytes(v) for v in values]

    async def marker(self, value: str) -> str | None:
        """The store's marker: set to ``value`` (a fresh random one) unless one is there; the one there
        now. A Redis that restarted without its data has none, so it gets a new one: whoever knew another
        must add what it counted again."""
        async with self._turns:
            await self.client.set(f"{self.prefix}marker", value, nx=True)
            found = await self.client.get(f"{self.prefix}marker")
        return None if found is None else found.decode()

    async def reset(self) -> None:
        """Drop every pooled connection (after an outage they point at a server that is gone)."""
        await self.client.connection_pool.disconnect()

    async def close(self) -> None:
        await self.client.aclose()
