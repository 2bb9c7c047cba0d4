"""Redis with a way to keep serving while it is away (each budget's ``on_state_unavailable``).

While Redis answers, every operation goes to it. When one fails (connection refused, timeout), the store
marks Redis down and from then on, without waiting for Redis again on any request:

- a reservation that involves a fail-closed budget raises :class:`~router.errors.StateUnavailable` (503);
- anything else is done in this process's memory, starting from the values Redis last returned for each
  counter, and written to a journal;
- a background task pings Redis every ``retry_s``; when it answers, the journal is added to it and Redis
  serves again. If Redis restarted meanwhile (its run id changed; nothing is persisted), everything this
  process ever counted in windows still open is added instead, so the counters and the ledger come back
  whole from all replicas' shares, not only from the part counted during the outage.

Replicas do not see each other's local counts during an outage: a fail-open budget can be passed by what
the other replicas serve meanwhile. That is the price of fail-open; choose fail-closed where it is not
acceptable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from router.accounting import windows
from router.accounting.budgets import Counter
from router.errors import StateUnavailable
from router.state.base import Delta, Ledgers, Reserved
from router.state.memory import MemoryStore
from router.state.redis import Errors, RedisStore

log = logging.getLogger(__name__)


class _Tally:
    """Counter deltas and ledger fields, summed (a journal, or all that this process counted)."""

    def __init__(self) -> None:
        self.counters: dict[str, tuple[int, int]] = {}
        self.ledgers: dict[str, dict[str, int]] = {}

    def add(self, deltas: Sequence[Delta], ledgers: Ledgers) -> None:
        for key, delta, expire_at in deltas:
            v, _ = self.counters.get(key, (0, expire_at))
            self.counters[key] = (v + delta, expire_at)
        for day, fields in ledgers.items():
            table = self.ledgers.setdefault(day, {})
            for f, v in fields.items():
                table[f] = table.get(f, 0) + v

    def deltas(self, now: float) -> list[Delta]:
        return [(k, v, exp) for k, (v, exp) in self.counters.items() if v and exp > now]

    def prune(self, now: float) -> None:
        """Forget counters whose window is over, and ledger days before the current month."""
        for k in [k for k, (_, exp) in self.counters.items() if exp <= now]:
            del self.counters[k]
        month = windows.month(now).label
        for d in [d for d in self.ledgers if not d.startswith(month)]:
            del self.ledgers[d]


class ResilientStore:
    name = "redis"

    def __init__(
        self,
        redis: RedisStore,
        on_change: Callable[[bool], None] = lambda up: None,
        retry_s: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.local = MemoryStore(clock)
        self.clock = clock
        self.retry_s = retry_s
        self.on_change = on_change
        self._up = True
        self._server: str | None = None
        self._last: dict[str, tuple[int, int]] = {}  # counter -> (value Redis last returned, expire-at)
        self._journal = _Tally()  # counted locally, not yet in Redis
        self._mine = _Tally()  # everything this process counted (to rebuild a restarted Redis)
        self._task: asyncio.Task[None] | None = None
        self._settles = 0

    @property
    def up(self) -> bool:
        return self._up

    async def start(self) -> None:
        try:
            self._server = await self.redis.server_id()
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
        """Local counting starts from what Redis last said, plus what is journaled since."""
        self.local.counters.clear()
        for key, (value, expire_at) in self._last.items():
            self.local.counters[key] = (value, expire_at)

    async def _reconnect(self) -> None:
        while not self._up:
            await asyncio.sleep(self.retry_s)
            try:
                await self.redis.reset()  # pooled connections from before the outage are dead
                server = await self.redis.server_id()
                restarted = self._server is not None and server != self._server
                source = self._mine if restarted else self._journal
                now = self.clock()
                await self.redis.settle(source.deltas(now), source.ledgers)
            except Errors:
                continue
            log.warning(
                "state store: Redis is back%s; added %d counters and %d ledger days counted %s",
                " (it restarted and forgot)" if restarted else "",
                len(source.counters),
                len(source.ledgers),
                "by this process" if restarted else "during the outage",
            )
            self._server = server
            self._journal = _Tally()
            self._up = True
            self.on_change(True)

    async def reserve(self, counters: Sequence[Counter]) -> Reserved:
        if self._up:
            try:
                result = await self.redis.reserve(counters)
            except Errors as exc:
                self._down(exc)
            else:
                if result.ok:
                    self._record(counters, result.values)
                return result
        if any(c.fail_closed for c in counters):
            closed = next(c.budget for c in counters if c.fail_closed)
            raise StateUnavailable(
                f"Budget {closed!r} cannot be checked: the shared state store is unreachable, and the budget "
                "fails closed."
            )
        result = await self.local.reserve(counters)
        if result.ok:
            self._journal.add([(c.key, c.amount, c.expire_at) for c in counters], {})
            self._mine.add([(c.key, c.amount, c.expire_at) for c in counters], {})
        return result

    def _record(self, counters: Sequence[Counter], values: Sequence[int]) -> None:
        self._mine.add([(c.key, c.amount, c.expire_at) for c in counters], {})
        for c, v in zip(counters, values, strict=False):
            self._last[c.key] = (v, c.expire_at)
        if len(self._last) > 50_000:
            self._last.clear()

    async def settle(self, deltas: Sequence[Delta], ledgers: Ledgers) -> None:
        self._mine.add(deltas, ledgers)
        self._settles += 1
        if self._settles % 1000 == 0:
            self._mine.prune(self.clock())
        if self._up:
            try:
                await self.redis.settle(deltas, ledgers)
                return
            except Errors as exc:
                self._down(exc)
        await self.local.settle(deltas, ledgers)
        self._journal.add(deltas, ledgers)

    async def ledger(self, days: Sequence[str]) -> Mapping[str, Mapping[str, int]]:
        if self._up:
            try:
                return await self.redis.ledger(days)
            except Errors as exc:
                self._down(exc)
        raise StateUnavailable("The shared state store is unreachable: usage cannot be reported now.")

    async def cache_get(self, key: str) -> bytes | None:
        if self._up:
            try:
                return await self.redis.cache_get(key)
            except Errors as exc:
                self._down(exc)
        return None

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        if self._up:
            try:
                await self.redis.cache_set(key, value, ttl_s)
            except Errors as exc:
                self._down(exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.redis.close()
