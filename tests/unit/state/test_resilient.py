"""Redis going away and coming back, with a private redis-server this test stops, starts and pauses: money
stays exact whichever way it went (issue #15)."""

from __future__ import annotations

import asyncio
import time

import pytest

from router.accounting.budgets import Counter, Final
from router.errors import StateUnavailable
from router.state.base import Ids, Lease, LedgerEntry
from router.state.redis import RedisStore
from router.state.resilient import ResilientStore
from tests.redis_servers import PrivateRedis

FAR = int(time.time()) + 3600
IDS = Ids()


def lease(key: str, cap: int | None, amount: int, closed: bool = False) -> Lease:
    c = Counter(key, cap, amount, FAR, "b", "usd_per_day", FAR, fail_closed=closed, scope="all", window="20261203")
    id_, seq = IDS.next()
    return Lease(id_, seq, (c,), FAR)


async def wait_up(store: ResilientStore) -> None:
    for _ in range(200):
        if store.up:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the store did not reconnect")


async def explained(redis: RedisStore, key: str) -> tuple[int, int, int]:
    """The counter as (value, settled, open), checked to be exactly explained."""
    snap = await redis.snapshot(time.time())
    (c,) = [c for c in snap.counters if c.key == key]
    assert c.difference == 0, c
    return c.value, c.settled, c.open


async def test_fail_open_counts_locally_and_a_redis_that_forgot_is_rebuilt(private_redis: PrivateRedis) -> None:
    changes: list[bool] = []
    store = ResilientStore(RedisStore(private_redis.url, "t:", 0.2), changes.append, retry_s=0.05)
    await store.start()
    first = lease("t:b:a", 100, 40)
    assert (await store.reserve(first)).ok
    private_redis.stop()
    second = lease("t:b:a", 100, 40)
    assert (await store.reserve(second)).ok  # fails over to local counting
    assert changes == [False]
    assert not (await store.reserve(lease("t:b:a", 100, 40))).ok  # local counts start from Redis's 40
    with pytest.raises(StateUnavailable):
        await store.reserve(lease("t:b:a", 100, 1, closed=True))
    await store.settle(first, [Final(30, 0)])
    day = {"20261201": LedgerEntry("20261201", "x", "r", "c").fields()}
    await store.record(IDS.next()[0], day)
    private_redis.start()  # a new, empty server: it forgot everything
    await wait_up(store)
    assert changes == [False, True]
    redis = RedisStore(private_redis.url, "t:")
    # Rebuilt from this process's share: 30 settled, and the 40 of the lease it still holds, still open.
    assert await explained(redis, "t:b:a") == (70, 30, 40)
    assert (await redis.ledger(["20261201"]))["20261201"]["x\tr\tc\trequests"] == 1
    await store.settle(second, [Final(5, 0)])
    assert await explained(redis, "t:b:a") == (35, 35, 0)
    await redis.close()
    await store.close()


async def test_a_stall_past_the_timeout_counts_each_operation_once(private_redis: PrivateRedis) -> None:
    """Redis frozen past the client's timeout runs the commands in its sockets when it wakes; the journal
    replays the same ones: each counts once, by its id (issue #15: ledger rows and settlements twice)."""
    store = ResilientStore(RedisStore(private_redis.url, "t:", 0.2), retry_s=0.05)
    await store.start()
    held = lease("t:b:j", None, 5)
    assert (await store.reserve(held)).ok
    redis = RedisStore(private_redis.url, "t:")
    await redis.client.execute_command("CLIENT", "PAUSE", 800, "ALL")  # a stall: commands wait, then run
    late = lease("t:b:j", None, 7)
    assert (await store.reserve(late)).ok  # timed out: counted locally, journaled; Redis runs it later
    assert not store.up
    await store.settle(held, [Final(3, 0)])  # journaled too
    await store.record("r:1", {"20261201": LedgerEntry("20261201", "x", "r", "c").fields()})
    await wait_up(store)
    await store.settle(late, [Final(2, 0)])
    await store.record("r:1", {"20261201": LedgerEntry("20261201", "x", "r", "c").fields()})  # a retry
    assert await explained(redis, "t:b:j") == (5, 5, 0)
    assert (await redis.ledger(["20261201"]))["20261201"]["x\tr\tc\trequests"] == 1
    await redis.close()
    await store.close()


async def test_a_fail_closed_reservation_lost_in_a_stall_is_released_by_its_id(private_redis: PrivateRedis) -> None:
    store = ResilientStore(RedisStore(private_redis.url, "t:", 0.2), retry_s=0.05)
    await store.start()
    redis = RedisStore(private_redis.url, "t:")
    await redis.client.execute_command("CLIENT", "PAUSE", 800, "ALL")
    with pytest.raises(StateUnavailable):  # a 503 for the client, and no answer without a reservation
        await store.reserve(lease("t:b:c", 100, 60, closed=True))
    await wait_up(store)
    snap = await redis.snapshot(time.time())
    assert snap.open_leases == 0  # Redis ran it when it woke; the release closed it
    assert [(c.value, c.settled, c.open) for c in snap.counters if c.key == "t:b:c"] in ([(0, 0, 0)], [])
    await redis.close()
    await store.close()


async def test_a_redis_that_kept_its_data_gets_the_journal_only(private_redis: PrivateRedis) -> None:
    store = ResilientStore(RedisStore(private_redis.url, "t:", 0.2), retry_s=0.05)
    await store.start()
    held = lease("t:b:p", None, 5)
    assert (await store.reserve(held)).ok
    await store.settle(held, [Final(5, 0)])
    redis = RedisStore(private_redis.url, "t:")
    await redis.client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")  # connections cut
    await store.record("r:2", {"20261201": LedgerEntry("20261201", "x", "r", "c").fields()})
    await wait_up(store)
    assert await explained(redis, "t:b:p") == (5, 5, 0)  # the marker was there: not rebuilt on top
    await redis.close()
    await store.close()


async def test_a_reservation_whose_caller_went_away_on_the_wire_is_released(private_redis: PrivateRedis) -> None:
    store = ResilientStore(RedisStore(private_redis.url, "t:", 2.0), retry_s=0.05)
    await store.start()
    redis = RedisStore(private_redis.url, "t:")
    await redis.client.execute_command("CLIENT", "PAUSE", 300, "WRITE")  # the call waits on the wire
    gone = lease("t:b:x", 100, 60)
    task = asyncio.create_task(store.reserve(gone))
    await asyncio.sleep(0.1)
    task.cancel()  # the client went away: Redis will still run it
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.5)  # the pause is over; the release went out
    assert (await redis.snapshot(time.time())).open_leases == 0
    await redis.reserve(gone)  # the reservation, had it been held up anywhere, arriving now: ignored
    snap = await redis.snapshot(time.time())
    assert snap.open_leases == 0
    assert [(c.value, c.settled, c.open) for c in snap.counters if c.key == "t:b:x"] in ([], [(0, 0, 0)])
    await redis.close()
    await store.close()


async def test_the_decision_list_is_best_effort_while_redis_is_away(private_redis: PrivateRedis) -> None:
    store = ResilientStore(RedisStore(private_redis.url, "t:", 0.2), retry_s=0.05)
    await store.start()
    await store.log_push("t:decisions", b"one", 10, 60)
    assert await store.log_read("t:decisions", 10) == [b"one"]
    private_redis.stop()
    await store.log_push("t:decisions", b"two", 10, 60)  # lost, never an error on the request's path
    with pytest.raises(StateUnavailable):  # an export says so rather than answering an empty list
        await store.log_read("t:decisions", 10)
    await store.close()
