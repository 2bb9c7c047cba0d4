"""The state store protocol and its value types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from router.accounting.budgets import Counter

LEDGER_METRICS = ("requests", "input_tokens", "output_tokens", "cost_nano", "baseline_nano", "cache_hits")
SEP = "\t"


@dataclass(frozen=True, slots=True)
class Reserved:
    ok: bool
    exhausted: int | None = None  # the first counter without room
    used: int = 0  # that counter's value
    values: tuple[int, ...] = ()  # every counter's value after the reservation


@dataclass(slots=True)
class LedgerEntry:
    """The ledger under (day, tenant, route, cluster): one request's contribution, or a process's buffered
    row of many, added up by name until the next flush."""

    day: str
    tenant: str
    route: str
    cluster: str
    requests: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nano: int = 0
    baseline_nano: int = 0
    cache_hits: int = 0

    def add(self, other: LedgerEntry) -> None:
        for m in LEDGER_METRICS:
            setattr(self, m, getattr(self, m) + getattr(other, m))

    def fields(self) -> dict[str, int]:
        head = SEP.join((self.tenant, self.route, self.cluster))
        return {f"{head}{SEP}{m}": getattr(self, m) for m in LEDGER_METRICS if getattr(self, m)}


Delta = tuple[str, int, int]  # key, amount to add, expire-at (unix seconds)
Ledgers = Mapping[str, Mapping[str, int]]  # day -> ledger field -> amount to add


def add_ledger(into: dict[str, dict[str, int]], entry: LedgerEntry) -> None:
    table = into.setdefault(entry.day, {})
    for f, v in entry.fields().items():
        table[f] = table.get(f, 0) + v


class StateStore(Protocol):
    name: str

    @property
    def up(self) -> bool:
        """Whether the shared state is reachable (the in-memory store always is)."""

    async def reserve(self, counters: Sequence[Counter]) -> Reserved:
        """Add every counter's amount if each stays within its cap, atomically; else change nothing."""

    async def settle(self, deltas: Sequence[Delta], ledgers: Ledgers) -> None:
        """Add the deltas (actual use minus reservation) and ledger fields (day -> field -> value)."""

    async def ledger(self, days: Sequence[str]) -> Mapping[str, Mapping[str, int]]:
        """Each day's ledger: field (tenant, route, cluster, metric joined by tabs) -> value."""

    async def cache_get(self, key: str) -> bytes | None: ...

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def close(self) -> None: ...
