"""The trailing window the gauges read: the hour under way and the one before, from the shared ledger."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from router.accounting.economics_live import trailing, watch
from router.errors import StateUnavailable
from router.state.base import LedgerEntry, add_ledger
from router.state.memory import MemoryStore
from tests.unit.pools import compiled, metered

POLICY = metered(1)
NOW = dt.datetime(2026, 12, 3, 10, 30, tzinfo=dt.UTC).timestamp()


async def test_the_window_is_the_last_full_hour_and_the_current_one() -> None:
    store = MemoryStore()
    ledgers: dict[str, dict[str, int]] = {}
    for hour in ("2026120308", "2026120309", "2026120310"):
        add_ledger(ledgers, LedgerEntry(hour, "t", "r", "pool", 1, 1000, 0, 0, 0))
    await store.record("b", ledgers)
    doc = await trailing(store, compiled(POLICY), NOW)
    assert doc["window_s"] == 5400
    assert doc["pools"][0]["input_tokens"] == 2000  # 08:00 is outside


async def test_the_last_figures_stay_while_the_store_is_away() -> None:
    class Away(MemoryStore):
        async def ledger(self, days):  # type: ignore[no-untyped-def]
            raise StateUnavailable("away")

    published: list[object] = []
    task = asyncio.ensure_future(watch(Away, lambda: compiled(POLICY), published.append, every_s=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert published == []
