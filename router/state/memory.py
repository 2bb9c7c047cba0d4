"""The in-memory store: one process's counters, leases, ledger and cache (the embedded default, and the
fallback of the Redis store while Redis is unreachable). Same semantics as the Redis scripts
(router/state/scripts.py): a lease is applied once, closed once (settled, released or reaped), and every
counter keeps, beside its value, the settled use that explains it."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from router.accounting.budgets import Final
from router.state.base import CounterCheck, Lease, Ledgers, Reserved, Snapshot

LEDGER_KEEP_S = 400 * 86_400
HOURLY_KEEP_S = 35 * 86_400  # hour tables (YYYYMMDDHH, and the pools' own figures): capacity planning reads a month
APPLIED_KEEP_S = 2 * 86_400  # how long Redis remembers an id (longer than any journal's replay)
# In one process's memory the only repeats are its own (a release after a cancelled reservation, a ledger
# flush sent again), within the lease's life: ids are kept that long and a margin, not for days.
LOCAL_KEEP_S = 600
PRUNE_EVERY = 1000


class MemoryStore:
    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.counters: dict[str, tuple[int, int]] = {}  # key -> (value, expire_at)
        self.settled: dict[str, int] = {}  # key -> use of the leases closed against it
        self.meta: dict[str, tuple[str, str, str, str]] = {}  # key -> budget, scope, limit, window
        self.leases: dict[str, Lease] = {}  # open ones
        self.applied: dict[str, float] = {}  # lease id -> until when it is remembered as applied
        self.closed: dict[str, float] = {}  # lease id -> the same, for closed ones
        self.batches: dict[str, float] = {}  # ledger batch ids applied
        self.ledgers: dict[str, dict[str, int]] = {}
        self._cache: dict[str, tuple[bytes, float]] = {}
        self._logs: dict[str, tuple[deque[bytes], float]] = {}
        self._adds = 0

    @property
    def up(self) -> bool:
        return True

    def value(self, key: str) -> int:
        found = self.counters.get(key)
        if found is None or found[1] < self.clock():
            return 0
        return found[0]

    def add(self, key: str, amount: int, expire_at: int, settled: int = 0) -> int:
        v = self.value(key) + amount
        self.counters[key] = (v, expire_at)
        if settled:
            self.settled[key] = self.settled.get(key, 0) + settled
        self._adds += 1
        if self._adds % PRUNE_EVERY == 0:  # windows end (every minute for rate limits): forget their keys
            self.prune()
        return v

    async def reserve(self, lease: Lease, force: bool = False) -> Reserved:
        if lease.id in self.applied:
            return Reserved(True, values=tuple(self.value(c.key) for c in lease.counters))
        if not force:
            for i, c in enumerate(lease.counters):
                used = self.value(c.key)
                if c.cap is not None and used + c.amount > c.cap:
                    return Reserved(False, i, used)
        self.applied[lease.id] = max(self.clock(), lease.expires_at) + LOCAL_KEEP_S
        self.leases[lease.id] = lease
        for c in lease.counters:
            self.meta.setdefault(c.key, (c.budget, c.scope, c.limit, c.window))
        return Reserved(True, values=tuple(self.add(c.key, c.amount, c.expire_at) for c in lease.counters))

    async def settle(self, lease: Lease, finals: Sequence[Final], release: bool = False) -> None:
        if lease.id in self.closed:
            return
        self.closed[lease.id] = max(self.clock(), lease.expires_at) + LOCAL_KEEP_S
        pairs = zip(lease.counters, finals, strict=True)
        if lease.id not in self.applied:  # never applied: it never will be (a late one is ignored)
            self.applied[lease.id] = self.closed[lease.id]
            if not release:
                for c, f in pairs:
                    self.add(c.key, f.final, c.expire_at, f.final)
        elif self.leases.pop(lease.id, None) is not None:
            for c, f in pairs:
                self.add(c.key, f.final - c.amount, c.expire_at, f.final)
        else:  # reaped meanwhile (as unanswered): only the difference
            for c, f in pairs:
                self.add(c.key, f.final - f.unanswered, c.expire_at, f.final - f.unanswered)

    async def record(self, batch: str, ledgers: Ledgers) -> None:
        if batch in self.batches:
            return
        self.batches[batch] = self.clock() + LOCAL_KEEP_S
        for day, fields in ledgers.items():
            table = self.ledgers.setdefault(day, {})
            for f, v in fields.items():
                table[f] = table.get(f, 0) + v

    async def reap(self, now: float) -> int:
        expired = [lease for lease in self.leases.values() if lease.expires_at <= now]
        for lease in expired:
            del self.leases[lease.id]
            for c in lease.counters:
                self.add(c.key, c.unanswered - c.amount, c.expire_at, c.unanswered)
        return len(expired)

    async def snapshot(self, now: float) -> Snapshot:
        open_: dict[str, int] = {}
        for lease in self.leases.values():
            for c in lease.counters:
                open_[c.key] = open_.get(c.key, 0) + c.amount
        checks = []
        for key, (value, expire_at) in self.counters.items():
            if expire_at < now or key not in self.meta:
                continue
            budget, scope, limit, window = self.meta[key]
            checks.append(
                CounterCheck(key, budget, scope, limit, window, value, self.settled.get(key, 0), open_.get(key, 0))
            )
        expired = sum(1 for lease in self.leases.values() if lease.expires_at <= now)
        return Snapshot(tuple(sorted(checks, key=lambda c: c.key)), len(self.leases), expired)

    async def ledger(self, days: Sequence[str]) -> Mapping[str, Mapping[str, int]]:
        return {d: dict(self.ledgers.get(d, {})) for d in days}

    async def cache_get(self, key: str, refresh_s: float | None = None) -> bytes | None:
        found = self._cache.get(key)
        if found is None or found[1] < self.clock():
            self._cache.pop(key, None)
            return None
        if refresh_s is not None:
            self._cache[key] = (found[0], self.clock() + refresh_s)
        return found[0]

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._cache[key] = (value, self.clock() + ttl_s)
        if len(self._cache) > 10_000:  # a bound: drop what has expired, then the oldest
            now = self.clock()
            for k in [k for k, (_, exp) in self._cache.items() if exp < now] or list(self._cache)[:1000]:
                self._cache.pop(k, None)

    async def log_push(self, key: str, value: bytes, cap: int, ttl_s: float) -> None:
        found = self._logs.get(key)
        items = found[0] if found is not None and found[1] >= self.clock() else deque(maxlen=cap)
        if items.maxlen != cap:
            items = deque(items, maxlen=cap)
        items.appendleft(value)
        self._logs[key] = (items, self.clock() + ttl_s)

    async def log_read(self, key: str, limit: int) -> list[bytes]:
        found = self._logs.get(key)
        if found is None or found[1] < self.clock():
            return []
        return list(itertools.islice(found[0], limit))

    def prune(self) -> None:
        now = self.clock()
        for k in [k for k, (_, exp) in self.counters.items() if exp < now]:
            del self.counters[k]
            self.settled.pop(k, None)
            self.meta.pop(k, None)
        for ids in (self.applied, self.closed, self.batches):
            for i in [i for i, until in ids.items() if until < now]:
                del ids[i]

    async def close(self) -> None:
        return None
