"""What the resilient store keeps while Redis is away: the journal's operations (each with its id, replayed
in order and applied once), and everything this process settled and recorded (added again to a Redis that
lost its data)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from router.accounting import windows
from router.accounting.budgets import Counter, Final
from router.state.base import Lease, Ledgers


@dataclass(frozen=True)
class Reserve:
    lease: Lease


@dataclass(frozen=True)
class Settle:
    lease: Lease
    finals: Sequence[Final]
    release: bool


@dataclass(frozen=True)
class Record:
    batch: str
    ledgers: Ledgers


Op = Reserve | Settle | Record


class Mine:
    """Everything this process settled (per counter) and recorded (per ledger field): what it adds again
    to a Redis that lost its data."""

    def __init__(self) -> None:
        self.settled: dict[str, tuple[int, Counter]] = {}
        self.ledgers: dict[str, dict[str, int]] = {}

    def settle(self, lease: Lease, finals: Sequence[Final], release: bool, was_open: bool) -> None:
        if release and not was_open:
            return
        for c, f in zip(lease.counters, finals, strict=True):
            if f.final:
                v, _ = self.settled.get(c.key, (0, c))
                self.settled[c.key] = (v + f.final, c)

    def record(self, ledgers: Ledgers) -> None:
        for day, fields in ledgers.items():
            table = self.ledgers.setdefault(day, {})
            for f, v in fields.items():
                table[f] = table.get(f, 0) + v

    def prune(self, now: float) -> None:
        """Forget counters whose window is over, and ledger days before the current month."""
        for k in [k for k, (_, c) in self.settled.items() if c.expire_at <= now]:
            del self.settled[k]
        month = windows.month(now).label
        for d in [d for d in self.ledgers if not d.startswith(month)]:
            del self.ledgers[d]
