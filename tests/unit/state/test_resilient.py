"""Redis going away and coming back, with a private redis-server this test stops and starts."""

from __future__ import annotations

import time

import pytest

from router.accounting.budgets import Counter
from router.errors import StateUnavailable
from router.state.base import LedgerEntry
from router.state.redis import RedisStore
from router.state.resilient import ResilientStore
from tests.redis_servers import PrivateRedis

FAR = int(time.time()) + 3600


def counter(key: str, cap: int | None, amount: int, closed: bool = False) -> Counter:
    return Counter(key, cap, amount, FAR, "b", "usd_per_day", FAR, fail_closed=closed)


async def wait_up(store: ResilientStore) -> None:
    import asyncio

    for _ in range(100):
        if store.up:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the store did not reconnect")


async def test_fail_open_counts_locally_and_fail_closed_refuses(private_redis: PrivateRedis) -> None:
    changes: list[bool] = []
    store = ResilientStore(RedisStore(private_redis.url, "t:", 0.2), changes.append, retry_s=0.05)
    await store.start()
    assert (await store.reserve([counter("t:b:a", 100, 40)])).ok
    private_redis.stop()
    assert (await store.reserve([counter("t:b:a", 100, 40)])).ok  # fails over to local counting
    assert changes == [False]
    assert not store.up
    assert not (await store.reserve([counter("t:b:a", 100, 40)])).ok  # local counts start from Redis's 40
    with pytest.raises(StateUnavailable):
        await store.reserve([counter("t:b:a", 100, 1, closed=True)])
    await store.settle([("t:b:a", -10, FAR)], {"20261201": LedgerEntry("20261201", "x", "r", "c").fields()})
    private_redis.start()  # a new, empty server: it forgot the 40
    await wait_up(store)
    assert changes == [False, True]
    redis = RedisStore(private_redis.url, "t:")
    # Rebuilt from this process's whole share: 40 + 40 - 10.
    assert int(await redis.client.get("t:b:a")) == 70
    assert (await redis.ledger(["20261201"]))["20261201"]["x\tr\tc\trequests"] == 1
    await redis.close()
    await store.close()


async def test_an_outage_without_a_restart_replays_only_the_journal(private_redis: PrivateRedis) -> None:
    store = ResilientStore(RedisStore(private_redis.url, "t:", 0.2), retry_s=0.05)
    await store.start()
    assert (await store.reserve([counter("t:b:j", None, 5)])).ok
    # Make Redis unreachable without restarting it: pause it past the client's timeout.
    redis = RedisStore(private_redis.url, "t:")
    await redis.client.execute_command("CLIENT", "PAUSE", 600, "ALL")
    assert (await store.reserve([counter("t:b:j", None, 7)])).ok
    assert not store.up
    await wait_up(store)
    assert int(await redis.client.get("t:b:j")) == 12  # 5 before, 7 replayed: not 5 counted twice
    await redis.close()
    await store.close()
