"""The memory and Redis stores keep the same contract (Redis: the real server, a unique prefix)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from router.accounting.budgets import Counter
from router.state.base import LedgerEntry, StateStore
from router.state.memory import MemoryStore
from router.state.redis import RedisStore
from tests.redis_servers import SHARED_URL

FAR = int(time.time()) + 3600


def counter(key: str, cap: int | None, amount: int) -> Counter:
    return Counter(key, cap, amount, FAR, "b", "usd_per_day", FAR)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[StateStore]:
    s: StateStore = MemoryStore() if request.param == "memory" else RedisStore(SHARED_URL, prefix)
    yield s
    await s.close()


async def test_reservations_are_all_or_nothing(store: StateStore, prefix: str) -> None:
    a, b = f"{prefix}b:a", f"{prefix}b:b"
    ok = await store.reserve([counter(a, 100, 60), counter(b, 10, 5)])
    assert ok.ok
    assert ok.values == (60, 5)
    no = await store.reserve([counter(a, 100, 30), counter(b, 10, 6)])  # b would pass its cap
    assert not no.ok
    assert (no.exhausted, no.used) == (1, 5)
    again = await store.reserve([counter(a, 100, 40)])  # a was left untouched by the refused one
    assert again.values == (100,)
    assert not (await store.reserve([counter(a, 100, 1)])).ok
    assert (await store.reserve([counter(a, None, 1)])).values == (101,)  # uncapped: counted only
    await store.settle([(a, -51, FAR)], {})
    assert (await store.reserve([counter(a, 100, 50)])).ok


async def test_ledger_and_cache(store: StateStore, prefix: str) -> None:
    e = LedgerEntry("20261201", "t", "r", "c", 1, 10, 20, 300, 900)
    await store.settle([], {e.day: e.fields()})
    await store.settle([], {e.day: e.fields()})
    got = await store.ledger(["20261201", "20261202"])
    assert got["20261201"]["t\tr\tc\tcost_nano"] == 600
    assert got["20261201"]["t\tr\tc\trequests"] == 2
    assert got["20261202"] == {}
    key = f"{prefix}c:t:abc"
    assert await store.cache_get(key) is None
    await store.cache_set(key, b"payload", 0.3)
    assert await store.cache_get(key) == b"payload"
    await asyncio.sleep(0.35)
    assert await store.cache_get(key) is None


async def test_concurrent_reservations_never_pass_the_cap(store: StateStore, prefix: str) -> None:
    key = f"{prefix}b:race"
    results = await asyncio.gather(*(store.reserve([counter(key, 50, 1)]) for _ in range(200)))
    assert sum(r.ok for r in results) == 50


async def test_the_memory_store_forgets_counters_whose_window_ended() -> None:
    from router.state.memory import PRUNE_EVERY

    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.reserve([Counter("old", None, 1, 1010, "b", "requests_per_minute", 1010)])
    now[0] = 2000.0
    for i in range(PRUNE_EVERY):
        await store.reserve([Counter(f"k{i % 3}", None, 1, 3000, "b", "requests_per_minute", 3000)])
    assert "old" not in store.counters
    assert store.value("k0") > 0


def test_ledger_rows_add_up_by_name() -> None:
    entry = LedgerEntry("20261202", "t", "r", "c", requests=1, input_tokens=5, cost_nano=7)
    entry.add(LedgerEntry("20261202", "t", "r", "c", requests=2, output_tokens=3, cache_hits=1))
    assert (entry.requests, entry.input_tokens, entry.output_tokens, entry.cost_nano, entry.cache_hits) == (
        3,
        5,
        3,
        7,
        1,
    )
    assert entry.fields() == {
        "t\tr\tc\trequests": 3, "t\tr\tc\tinput_tokens": 5, "t\tr\tc\toutput_tokens": 3,
        "t\tr\tc\tcost_nano": 7, "t\tr\tc\tcache_hits": 1,
    }  # fmt: skip
