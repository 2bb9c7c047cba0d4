"""The state store protocol and its value types."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from router.accounting.budgets import Counter, Final

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


Ledgers = Mapping[str, Mapping[str, int]]  # day -> ledger field -> amount to add


def add_ledger(into: dict[str, dict[str, int]], entry: LedgerEntry) -> None:
    table = into.setdefault(entry.day, {})
    for f, v in entry.fields().items():
        table[f] = table.get(f, 0) + v


@dataclass(frozen=True, slots=True)
class Lease:
    """A reservation as a lease: the request's most against each counter, under an id of its own (this
    replica's token and a sequence number), until ``expires_at`` (unix seconds; past it, any replica may
    reap it, returning the unused part once). Every write about it carries the id, so a command that ran
    late and its replay cannot both count."""

    id: str  # "<replica>:<seq>"
    seq: int
    counters: tuple[Counter, ...]
    expires_at: int

    @property
    def replica(self) -> str:
        return self.id.rpartition(":")[0]


@dataclass(frozen=True, slots=True)
class CounterCheck:
    """One counter, read in one atomic step with what explains it: the settled use and the open leases."""

    key: str
    budget: str
    scope: str
    limit: str
    window: str
    value: int
    settled: int
    open: int  # reserved by leases still open

    @property
    def difference(self) -> int:
        return self.value - self.settled - self.open


@dataclass(frozen=True, slots=True)
class Snapshot:
    counters: tuple[CounterCheck, ...]
    open_leases: int
    expired_leases: int  # open past their expiry, not yet reaped


class Ids:
    """Ids of leases and ledger batches: this replica's random token and a sequence number (compact bits
    in Redis say which were applied; see router/state/scripts.py)."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token or secrets.token_hex(6)
        self._seq = itertools.count()

    def next(self) -> tuple[str, int]:
        seq = next(self._seq)
        return f"{self.token}:{seq}", seq


def unanswered(lease: Lease) -> list[Final]:
    """Each counter's end when the request got nothing (a release, or a reaping)."""
    return [Final(c.unanswered, c.unanswered) for c in lease.counters]


class StateStore(Protocol):
    name: str

    @property
    def up(self) -> bool:
        """Whether the shared state is reachable (the in-memory store always is)."""

    async def reserve(self, lease: Lease, force: bool = False) -> Reserved:
        """Add every counter's amount if each stays within its cap (``force``: regardless), atomically, and
        open the lease; else change nothing. A lease already applied is not applied again."""

    async def settle(self, lease: Lease, finals: Sequence[Final], release: bool = False) -> None:
        """Close the lease: each counter ends at its final (``release``: the request got nothing; a lease
        that was never applied stays so, even if its reservation arrives late). Once per lease."""

    async def record(self, batch: str, ledgers: Ledgers) -> None:
        """Add ledger fields (day -> field -> value), once per ``batch`` id."""

    async def reap(self, now: float) -> int:
        """Close leases open past their expiry as unanswered; how many."""

    async def snapshot(self, now: float) -> Snapshot:
        """Every live counter with its settled use and open leases, in one atomic read."""

    async def ledger(self, days: Sequence[str]) -> Mapping[str, Mapping[str, int]]:
        """Each day's ledger: field (tenant, route, cluster, metric joined by tabs) -> value."""

    async def cache_get(self, key: str, refresh_s: float | None = None) -> bytes | None:
        """A cached value (None: absent or expired); ``refresh_s``: its time to live starts again, that long."""

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def log_push(self, key: str, value: bytes, cap: int, ttl_s: float) -> None:
        """Add ``value`` to the front of a capped list (the newest ``cap`` kept; the list expires ``ttl_s``
        after its last push)."""

    async def log_read(self, key: str, limit: int) -> list[bytes]:
        """The newest ``limit`` values of a capped list, newest first."""

    async def close(self) -> None: ...
