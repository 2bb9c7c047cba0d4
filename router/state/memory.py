"""The in-memory store: one process's counters, ledger and cache (the embedded default, and the
fallback of the Redis store while Redis is unreachable). Same semantics as the Redis scripts."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from router.accounting.budgets import Counter
from router.state.base import Delta, Ledgers, Reserved

LEDGER_KEEP_S = 400 * 86_400
PRUNE_EVERY = 1000


class MemoryStore:
    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.counters: dict[str, tuple[int, int]] = {}  # key -> (value, expire_at)
        self.ledgers: dict[str, dict[str, int]] = {}
        self._cache: dict[str, tuple[bytes, float]] = {}
        self._adds = 0

    @property
    def up(self) -> bool:
        return True

    def value(self, key: str) -> int:
        found = self.counters.get(key)
        if found is None or found[1] < self.clock():
            return 0
        return found[0]

    def add(self, key: str, amount: int, expire_at: int) -> int:
        v = self.value(key) + amount
        self.counters[key] = (v, expire_at)
        self._adds += 1
        if self._adds % PRUNE_EVERY == 0:  # windows end (every minute for rate limits): forget their keys
            self.prune()
        return v

    async def reserve(self, counters: Sequence[Counter]) -> Reserved:
        for i, c in enumerate(counters):
            used = self.value(c.key)
            if c.cap is not None and used + c.amount > c.cap:
                return Reserved(False, i, used)
        return Reserved(True, values=tuple(self.add(c.key, c.amount, c.expire_at) for c in counters))

    async def settle(self, deltas: Sequence[Delta], ledgers: Ledgers) -> None:
        for key, delta, expire_at in deltas:
            self.add(key, delta, expire_at)
        for day, fields in ledgers.items():
            table = self.ledgers.setdefault(day, {})
            for f, v in fields.items():
                table[f] = table.get(f, 0) + v

    async def ledger(self, days: Sequence[str]) -> Mapping[str, Mapping[str, int]]:
        return {d: dict(self.ledgers.get(d, {})) for d in days}

    async def cache_get(self, key: str) -> bytes | None:
        found = self._cache.get(key)
        if found is None or found[1] < self.clock():
            self._cache.pop(key, None)
            return None
        return found[0]

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._cache[key] = (value, self.clock() + ttl_s)
        if len(self._cache) > 10_000:  # a bound: drop what has expired, then the oldest
            now = self.clock()
            for k in [k for k, (_, exp) in self._cache.items() if exp < now] or list(self._cache)[:1000]:
                self._cache.pop(k, None)

    def prune(self) -> None:
        now = self.clock()
        for k in [k for k, (_, exp) in self.counters.items() if exp < now]:
            del self.counters[k]

    async def close(self) -> None:
        return None
