"""The memory and Redis stores keep the same contract (Redis: the real server, a unique prefix)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from router.accounting.budgets import Counter, Final
from router.state.base import Ids, Lease, LedgerEntry, StateStore
from router.state.memory import MemoryStore
from router.state.redis import RedisStore
from tests.redis_servers import SHARED_URL

FAR = int(time.time()) + 3600
IDS = Ids()


def counter(key: str, cap: int | None, amount: int, limit: str = "usd_per_day") -> Counter:
    return Counter(key, cap, amount, FAR, "b", limit, FAR, scope="t=x", window="20261203")


def lease(*counters: Counter, expires: int = FAR) -> Lease:
    id_, seq = IDS.next()
    return Lease(id_, seq, counters, expires)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[StateStore]:
    s: StateStore = MemoryStore() if request.param == "memory" else RedisStore(SHARED_URL, prefix)
    yield s
    await s.close()


async def exact(store: StateStore) -> dict[str, tuple[int, int, int]]:
    """Every counter as (value, settled, open), after checking each is explained exactly."""
    snap = await store.snapshot(time.time())
    assert all(c.difference == 0 for c in snap.counters), snap
    return {c.key: (c.value, c.settled, c.open) for c in snap.counters}


async def test_reservations_are_all_or_nothing(store: StateStore, prefix: str) -> None:
    a, b = f"{prefix}b:a", f"{prefix}b:b"
    ok = await store.reserve(lease(counter(a, 100, 60), counter(b, 10, 5)))
    assert ok.ok
    assert ok.values == (60, 5)
    no = await store.reserve(lease(counter(a, 100, 30), counter(b, 10, 6)))  # b would pass its cap
    assert not no.ok
    assert (no.exhausted, no.used) == (1, 5)
    again = lease(counter(a, 100, 40))  # a was left untouched by the refused one
    assert (await store.reserve(again)).values == (100,)
    assert not (await store.reserve(lease(counter(a, 100, 1)))).ok
    assert (await store.reserve(lease(counter(a, None, 1)))).values == (101,)  # uncapped: counted only
    await store.settle(again, [Final(0, 0)])  # it used nothing: its 40 come back
    assert (await store.reserve(lease(counter(a, 100, 39)))).ok
    assert (await exact(store))[a] == (100, 0, 100)


async def test_a_lease_is_applied_once_and_closed_once(store: StateStore, prefix: str) -> None:
    k = f"{prefix}b:once"
    one = lease(counter(k, 100, 30))
    assert (await store.reserve(one)).values == (30,)
    assert (await store.reserve(one)).values == (30,)  # a command that ran late, then its replay
    await store.settle(one, [Final(12, 0)])
    await store.settle(one, [Final(12, 0)])  # the same twice: once
    assert (await exact(store))[k] == (12, 12, 0)
    late = lease(counter(k, 100, 50))
    await store.settle(late, [Final(0, 0)], release=True)  # its reservation timed out: released first
    assert (await store.reserve(late)).ok  # ... and Redis runs it when it wakes: ignored
    assert (await exact(store))[k] == (12, 12, 0)
    unseen = lease(counter(k, 100, 50))
    await store.settle(unseen, [Final(7, 0)])  # settled, though its reservation never arrived
    assert (await exact(store))[k] == (19, 19, 0)


async def test_expired_leases_are_reaped_once_and_a_late_settlement_adds_only_its_use(
    store: StateStore, prefix: str
) -> None:
    money, calls = f"{prefix}b:m", f"{prefix}b:r"
    now = time.time()
    gone = lease(counter(money, None, 40), counter(calls, None, 1, "requests_per_minute"), expires=int(now) - 1)
    kept = lease(counter(money, None, 10))
    await store.reserve(gone)
    await store.reserve(kept)
    assert (await store.snapshot(now)).expired_leases == 1
    assert await store.reap(now) == 1
    assert await store.reap(now) == 0  # once: whichever replica gets there first
    counters = await exact(store)
    assert counters[money] == (10, 0, 10)  # its 40 freed; the open 10 stay
    assert counters[calls] == (1, 1, 0)  # a request that got nothing is still a request
    await store.settle(gone, [Final(25, 0), Final(1, 1)])  # it did finish, late
    assert (await exact(store))[money] == (35, 25, 10)


async def test_ledger_batches_count_once_and_the_cache_expires(store: StateStore, prefix: str) -> None:
    e = LedgerEntry("20261201", "t", "r", "c", 1, 10, 20, 300, 900)
    first, second = IDS.next()[0], IDS.next()[0]
    await store.record(first, {e.day: e.fields()})
    await store.record(first, {e.day: e.fields()})  # a flush Redis ran late, and its retry
    await store.record(second, {e.day: e.fields()})
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
    leases = [lease(counter(key, 50, 1)) for _ in range(200)]
    results = await asyncio.gather(*(store.reserve(one) for one in leases))
    assert sum(r.ok for r in results) == 50
    await asyncio.gather(*(store.settle(one, [Final(1, 0)]) for one, r in zip(leases, results, strict=True) if r.ok))
    assert (await exact(store))[key] == (50, 50, 0)


async def test_the_memory_store_forgets_counters_whose_window_ended() -> None:
    from router.state.memory import PRUNE_EVERY

    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.reserve(lease(Counter("old", None, 1, 1010, "b", "requests_per_minute", 1010), expires=1010))
    now[0] = 2000.0
    for i in range(PRUNE_EVERY):
        await store.reserve(lease(Counter(f"k{i % 3}", None, 1, 3000, "b", "requests_per_minute", 3000)))
    assert "old" not in store.counters
    assert store.value("k0") > 0
    assert len(store.applied) == PRUNE_EVERY  # the first lease's id is forgotten with its window and margin


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


async def test_a_cached_value_read_with_refresh_lives_on(store: StateStore, prefix: str) -> None:
    key = f"{prefix}k:t:auto:abc"
    await store.cache_set(key, b"route", 0.3)
    await asyncio.sleep(0.2)
    assert await store.cache_get(key, refresh_s=0.3) == b"route"  # a conversation's turn: its TTL starts again
    await asyncio.sleep(0.2)
    assert await store.cache_get(key) == b"route"  # past the first TTL, within the refreshed one
    await asyncio.sleep(0.35)
    assert await store.cache_get(key) is None


async def test_concurrent_refreshing_reads_share_round_trips_and_keep_their_answers(prefix: str) -> None:
    store = RedisStore(SHARED_URL, prefix)
    try:
        for i in range(20):
            await store.cache_set(f"{prefix}k:{i}", f"route-{i}".encode(), 60)
        got = await asyncio.gather(*(store.cache_get(f"{prefix}k:{i}", refresh_s=30) for i in range(25)))
        assert got == [f"route-{i}".encode() for i in range(20)] + [None] * 5  # each its own, in order
        assert 25 <= await store.client.pttl(f"{prefix}k:0") <= 30_000  # refreshed to 30 s (from 60)
    finally:
        await store.close()


async def test_a_capped_log_keeps_the_newest_first_and_expires(store: StateStore, prefix: str) -> None:
    key = f"{prefix}decisions"
    assert await store.log_read(key, 10) == []
    for i in range(7):
        await store.log_push(key, f"d{i}".encode(), 5, 0.3)
    assert await store.log_read(key, 10) == [b"d6", b"d5", b"d4", b"d3", b"d2"]  # the cap keeps the newest five
    assert await store.log_read(key, 2) == [b"d6", b"d5"]
    await asyncio.sleep(0.35)
    assert await store.log_read(key, 10) == []
