"""The cost ledger of one proxy replica: answered requests added up per (UTC day, tenant, route, cluster),
and per UTC hour for the pools' economics, in memory, and flushed to the shared state store every
:data:`FLUSH_S` (before a usage report, at exit). Each flush is a batch with an id of its own, applied
once however often it is sent: one the store does not take is sent again as it was, with the same id, so
no row is lost to a Redis outage and none counted twice by a Redis that ran the first try late."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from router.accounting import windows
from router.accounting.costs import nano
from router.errors import StateUnavailable
from router.state.base import SEP, Ids, LedgerEntry, StateStore, add_ledger
from router.types import Usage

FLUSH_S = 0.2


UP_MS = "up_ms"  # replica up time, a pool figure of its own


def served_label(hour: str) -> str:
    """The ledger table of what the pools' own counters say they served in ``hour`` (YYYYMMDDHH)."""
    return hour + "v"


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
        self._served: dict[str, dict[str, int]] = {}  # served_label -> cluster, replica, metric -> tokens
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
        now = time.time()
        cost = nano(costed.cost_usd) if costed.cost_usd else 0
        baseline = nano(costed.baseline_usd) if costed.baseline_usd else 0
        # The day's row (usage reports, budgets) and the hour's (pool economics, capacity planning).
        for label in (day or windows.day(now).label, windows.hour(now).label):
            key = (label, tenant, route, cluster)
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = LedgerEntry(*key, requests=0)
            row.requests += 1
            row.input_tokens += usage.input_tokens
            row.output_tokens += usage.output_tokens
            row.cost_nano += cost
            row.baseline_nano += baseline
            row.cache_hits += 1 if cache_hit else 0

    def served(self, cluster: str, prompt_tokens: int, generation_tokens: int) -> None:
        """Count tokens a pool's replicas say they processed (the increase of vLLM's own counters between
        two scrapes of this replica), under the hour's :func:`served_label` and this replica's token:
        every proxy replica scrapes the same pools, so a report takes the largest replica's count."""
        for metric, value in (("prompt_tokens", prompt_tokens), ("generation_tokens", generation_tokens)):
            if value > 0:
                self._pool_figure((cluster, self._ids.token, metric), value)

    def up(self, cluster: str, tier: str, seconds: float) -> None:
        """Count replica up time of a pool's tier (milliseconds), as this replica's health checks saw it;
        kept like :meth:`served` (the largest replica's count per hour)."""
        if seconds > 0:
            self._pool_figure((cluster, self._ids.token, UP_MS, tier), round(seconds * 1000))

    def _pool_figure(self, key: tuple[str, ...], value: int) -> None:
        table = self._served.setdefault(served_label(windows.hour(time.time()).label), {})
        f = SEP.join(key)
        table[f] = table.get(f, 0) + value

    async def flush(self) -> None:
        async with self._lock:
            if self._rows or self._served:
                rows, self._rows = self._rows, {}
                pending, self._served = self._served, {}
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
