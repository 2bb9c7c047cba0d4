"""The cost ledger of one proxy replica: answered requests added up per (UTC day, tenant, route, cluster)
in memory, and flushed to the shared state store every :data:`FLUSH_S` (before a usage report, at exit).
Each flush is a batch with an id of its own, applied once however often it is sent: one the store does not
take is sent again as it was, with the same id, so no row is lost to a Redis outage and none counted twice
by a Redis that ran the first try late."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from router.accounting import windows
from router.accounting.costs import nano
from router.errors import StateUnavailable
from router.state.base import Ids, LedgerEntry, StateStore, add_ledger
from router.types import Usage

FLUSH_S = 0.2


@dataclass(frozen=True, slots=True)
class Costed:
    """What an answer cost, and what it would have cost on the baseline model (dollars)."""

    cost_usd: float
    baseline_usd: float


class Ledger:
    def __init__(self, store: Callable[[], StateStore], ids: Ids) -> None:
        self._store = store  # read at each flush: the app picks the store at start-up
        self._ids = ids
        # (day, tenant, route, cluster) -> the row since the last flush.
        self._rows: dict[tuple[str, str, str, str], LedgerEntry] = {}
        self._unsent: list[tuple[str, dict[str, dict[str, int]]]] = []  # batches the store did not take
        self._lock = asyncio.Lock()

    def add(
        self,
        tenant: str,
        route: str,
        cluster: str,
        usage: Usage,
        costed: Costed,
        cache_hit: bool,
        day: str | None = None,
    ) -> None:
        """Count an answer, on ``day`` (its reservation's, so that a daily budget and the ledger agree on
        requests that span midnight) or today."""
        key = (day or windows.day(time.time()).label, tenant, route, cluster)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = LedgerEntry(*key, requests=0)
        row.requests += 1
        row.input_tokens += usage.input_tokens
        row.output_tokens += usage.output_tokens
        row.cost_nano += nano(costed.cost_usd) if costed.cost_usd else 0
        row.baseline_nano += nano(costed.baseline_usd) if costed.baseline_usd else 0
        row.cache_hits += 1 if cache_hit else 0

    async def flush(self) -> None:
        async with self._lock:
            if self._rows:
                rows, self._rows = self._rows, {}
                pending: dict[str, dict[str, int]] = {}
                for row in rows.values():
                    add_ledger(pending, row)
                self._unsent.append((self._ids.next()[0], pending))
            while self._unsent:
                batch, ledgers = self._unsent[0]
                try:
                    await self._store().record(batch, ledgers)
                except StateUnavailable:
                    return  # kept, with its id, for the next flush
                self._unsent.pop(0)
