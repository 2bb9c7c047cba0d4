"""Redis with a way to keep serving while it is away (each budget's ``on_state_unavailable``), and money
that stays exact whichever way it went away.

While Redis answers, every operation goes to it. When one fails (connection refused, or a timeout: Redis
stalled, and may still run the command when it wakes), the store marks Redis down and from then on,
without waiting for Redis again on any request:

- a reservation that involves a fail-closed budget raises :class:`~router.errors.StateUnavailable` (503);
  one that timed out is released by id later (whether or not Redis ran it);
- anything else is done in this process's memory, starting from the values Redis last returned for each
  counter, and written to a journal of operations, each with its id;
- a background task pings Redis every ``retry_s``; when it answers, the journal is replayed in order.
  Every write is applied once per id (router/state/scripts.py), so an operation that Redis ran late and
  its replay count once. If Redis lost its data meanwhile (its marker is gone: restarted without
  persistence), everything this process settled in windows still open and the leases it holds are added
  instead, so the counters and the ledger come back whole from all replicas' shares.

Replicas do not see each other's local counts during an outage: a fail-open budget can be passed by what
the other replicas serve meanwhile. That is the price of fail-open; choose fail-closed where it is not
acceptable.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any

from router.accounting.budgets import Final
from router.errors import StateUnavailable
from router.state.base import Ids, Lease, Ledgers, Reserved, Snapshot, unanswered
from router.state.journal import Mine, Op, Record, Reserve, Settle
from router.state.memory import MemoryStore
from router.state.redis import Errors, RedisStore

log = logging.getLogger(__name__)


class ResilientStore:
    name = "redis"

    def __init__(
        self,
        redis: RedisStore,
        on_change: Callable[[bool], None] = lambda up: None,
        retry_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        on_local: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_change``: told when Redis goes away or comes back; ``on_local``: when a reservation is
        granted from this process's memory (fail-open, while Redis is away)."""
        self.redis = redis
        self.on_local = on_local
        self.local = MemoryStore(clock)
        self.clock = clock
        self.retry_s = retry_s
        self.on_change = on_change
        self.ids = Ids()  # for what this store writes on its own (a rebuild)
        self._up = True
        self._marker: str | None = None  # the marker Redis had: gone or changed means it lost its data
        self._last: dict[str, tuple[int, int]] = {}  # counter -> (value Redis last returned, expire-at)
        self._journal: list[Op] = []  # done locally, not yet in Redis, in order
        self._open: dict[str, Lease] = {}  # this process's open leases
        self._mine = Mine()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[None]] = set()
        self._settles = 0

    @property
    def up(self) -> bool:
        return self._up

    async def start(self) -> None:
        try:
            self._marker = self.redis.expect = await self.redis.marker(secrets.token_hex(8)) or ""
        except Errors as exc:
            self._down(exc)

    def _down(self, exc: BaseException) -> None:
        if self._up:
            log.error(
                "state store: Redis unreachable (%s: %s); counting locally per budget policy", type(exc).__name__, exc
            )
            self._up = False
            self.on_change(False)
            self._seed()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._reconnect())

    def _seed(self) -> None:
        """Local counting starts from what Redis last said, with this process's leases open."""
        self.local = MemoryStore(self.clock)
        self.local.counters.update(self._last)
        for lease in self._open.values():
            self.local.applied[lease.id] = lease.expires_at
            self.local.leases[lease.id] = lease

    async def _reconnect(self) -> None:
        while not self._up:
            await asyncio.sleep(self.retry_s)
            try:
                await self.redis.reset()  # pooled connections from before the outage are dead
                # A fresh value each time: a Redis that restarted empty must never get back the one it had.
                found = await self.redis.marker(secrets.token_hex(8))
            except Errors:
                continue
            forgot = found != self._marker
            ops, self._journal = (self._rebuild() if forgot else self._journal), []
            self._marker = self.redis.expect = found or ""  # a rebuild cut short goes on as a journal
            done = 0
            try:
                for op in ops:
                    await self._apply(op)
                    done += 1
            except Errors:
                self._journal = ops[done:] + self._journal  # the rest, before what came meanwhile
                continue
            log.warning(
                "state store: Redis is back%s; replayed %d operations",
                " (it had lost its data: this process's share was added again)" if forgot else "",
                len(ops),
            )
            if self._journal:  # written while replaying: replay those too before serving from Redis
                continue
            self._up = True
            self.on_change(True)

    def _rebuild(self) -> list[Op]:
        """What this process adds to a Redis that lost its data: its settled use per counter, its ledger,
        and the leases it holds (as ops with new ids; the old ones' bits are gone with the data)."""
        now = self.clock()
        self._mine.prune(now)
        ops: list[Op] = []
        for used, c in self._mine.settled.values():
            id_, seq = self.ids.next()
            ops.append(Settle(Lease(id_, seq, (replace(c, amount=0),), int(now)), (Final(used, 0),), False))
        if self._mine.ledgers:
            ops.append(Record(self.ids.next()[0], {d: dict(f) for d, f in self._mine.ledgers.items()}))
        ops += [Reserve(lease) for lease in self._open.values()]
        return ops

    async def _apply(self, op: Op) -> None:
        if isinstance(op, Reserve):
            await self.redis.reserve(op.lease, force=True)
        elif isinstance(op, Settle):
            await self.redis.settle(op.lease, op.finals, op.release)
        else:
            await self.redis.record(op.batch, op.ledgers)

    async def reserve(self, lease: Lease, force: bool = False) -> Reserved:
        closed = next((c.budget for c in lease.counters if c.fail_closed), None)
        if self._up:
            try:
                result = await self.redis.reserve(lease, force)
            except Errors as exc:
                self._down(exc)
                if closed is not None:  # Redis may still run it when it wakes: release it by id then
                    self._journal.append(Settle(lease, unanswered(lease), True))
            except asyncio.CancelledError:
                self._later(self.settle(lease, unanswered(lease), release=True))  # it may have run
                raise
            else:
                if result.ok:
                    self._open[lease.id] = lease
                    for c, v in zip(lease.counters, result.values, strict=False):
                        self._last[c.key] = (v, c.expire_at)
                    if len(self._last) > 50_000:
                        self._last.clear()
                return result
        if closed is not None:
            raise StateUnavailable(
                f"Budget {closed!r} cannot be checked: the shared state store is unreachable, and the budget "
                "fails closed."
            )
        result = await self.local.reserve(lease, force)
        if result.ok:
            self._open[lease.id] = lease
            self._journal.append(Reserve(lease))
            self.on_local()
        return result

    async def settle(self, lease: Lease, finals: Sequence[Final], release: bool = False) -> None:
        was_open = self._open.pop(lease.id, None) is not None
        self._mine.settle(lease, finals, release, was_open)
        self._settles += 1
        if self._settles % 1000 == 0:
            self._mine.prune(self.clock())
        if self._up:
            try:
                await self.redis.settle(lease, finals, release)
                return
            except Errors as exc:
                self._down(exc)
        self._journal.append(Settle(lease, finals, release))
        await self.local.settle(lease, finals, release)

    async def record(self, batch: str, ledgers: Ledgers) -> None:
        self._mine.record(ledgers)
        if self._up:
            try:
                await self.redis.record(batch, ledgers)
                return
            except Errors as exc:
                self._down(exc)
        self._journal.append(Record(batch, ledgers))
        await self.local.record(batch, ledgers)

    async def reap(self, now: float) -> int:
        """Expired leases of any replica, in Redis (while it is away, nothing: they wait for it)."""
        if self._up:
            try:
                return await self.redis.reap(now)
            except Errors as exc:
                self._down(exc)
        return 0

    async def snapshot(self, now: float) -> Snapshot:
        if self._up:
            try:
                return await self.redis.snapshot(now)
            except Errors as exc:
                self._down(exc)
        raise StateUnavailable("The shared state store is unreachable: the budgets cannot be verified now.")

    async def ledger(self, days: Sequence[str]) -> Mapping[str, Mapping[str, int]]:
        if self._up:
            try:
                return await self.redis.ledger(days)
            except Errors as exc:
                self._down(exc)
        raise StateUnavailable("The shared state store is unreachable: usage cannot be reported now.")

    async def cache_get(self, key: str, refresh_s: float | None = None) -> bytes | None:
        if self._up:
            try:
                return await self.redis.cache_get(key, refresh_s)
            except Errors as exc:
                self._down(exc)
        return None

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        if self._up:
            try:
                await self.redis.cache_set(key, value, ttl_s)
            except Errors as exc:
                self._down(exc)

    async def log_push(self, key: str, value: bytes, cap: int, ttl_s: float) -> None:
        if self._up:
            try:
                await self.redis.log_push(key, value, cap, ttl_s)
            except Errors as exc:
                self._down(exc)

    async def log_read(self, key: str, limit: int) -> list[bytes]:
        if self._up:
            try:
                return await self.redis.log_read(key, limit)
            except Errors as exc:
                self._down(exc)
        raise StateUnavailable("the state store (Redis) is unavailable: the decision log cannot be read")

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        await self.redis.close()
