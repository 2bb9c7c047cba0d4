"""The ledger buffer: rows added up by (day, tenant, route, cluster), flushed to the store, and kept when the
store is down so that no answered request goes uncounted."""

from __future__ import annotations

import time

from router.accounting.ledger import Costed, Ledger
from router.accounting.windows import day
from router.errors import StateUnavailable
from router.state.base import Ids, Ledgers
from router.state.memory import MemoryStore
from router.types import Usage


class DownStore(MemoryStore):
    """A store whose writes fail while ``down`` is set (``ran``: the write happens all the same, as a Redis
    that stalled past the client's timeout runs it when it wakes)."""

    down = True
    ran = False

    async def record(self, batch: str, ledgers: Ledgers) -> None:
        if self.down:
            if self.ran:
                await super().record(batch, ledgers)
            raise StateUnavailable("redis is away")
        await super().record(batch, ledgers)


async def test_rows_add_up_by_key_and_reach_the_store_on_flush() -> None:
    store = MemoryStore()
    ledger = Ledger(lambda: store, Ids())
    ledger.add("t", "r", "pool", Usage(10, 5), Costed(0.001, 0.01), cache_hit=False)
    ledger.add("t", "r", "pool", Usage(1, 1), Costed(0.0, 0.001), cache_hit=True)
    ledger.add("u", "r", "pool", Usage(1, 1), Costed(0.0, 0.0), cache_hit=False)
    assert store.ledgers == {}  # buffered
    await ledger.flush()
    today = day(time.time()).label
    table = (await store.ledger([today]))[today]
    assert sum(v for k, v in table.items() if k.endswith("requests")) == 3
    assert sum(v for k, v in table.items() if k.endswith("cache_hits")) == 1
    assert sum(v for k, v in table.items() if k.endswith("cost_nano")) == 1_000_000
    await ledger.flush()  # nothing new: nothing written twice
    assert (await store.ledger([today]))[today] == table


async def test_a_flush_the_store_refuses_is_kept_for_the_next() -> None:
    store = DownStore()
    ledger = Ledger(lambda: store, Ids())
    ledger.add("t", "r", "pool", Usage(10, 5), Costed(0.002, 0.02), cache_hit=False)
    await ledger.flush()
    ledger.add("t", "r", "pool", Usage(10, 5), Costed(0.002, 0.02), cache_hit=False)
    store.down = False
    await ledger.flush()
    today = day(time.time()).label
    table = (await store.ledger([today]))[today]
    assert sum(v for k, v in table.items() if k.endswith("requests")) == 2  # both, once each
    assert sum(v for k, v in table.items() if k.endswith("input_tokens")) == 20


async def test_a_flush_that_ran_late_and_its_retry_count_once() -> None:
    store = DownStore()
    store.ran = True
    ledger = Ledger(lambda: store, Ids())
    ledger.add("t", "r", "pool", Usage(10, 5), Costed(0.002, 0.02), cache_hit=False)
    await ledger.flush()  # timed out here, but Redis ran it
    store.down = False
    await ledger.flush()  # sent again, with the same id
    today = day(time.time()).label
    table = (await store.ledger([today]))[today]
    assert sum(v for k, v in table.items() if k.endswith("requests")) == 1


async def test_a_request_is_counted_on_its_reservations_day() -> None:
    store = MemoryStore()
    ledger = Ledger(lambda: store, Ids())
    ledger.add("t", "r", "pool", Usage(1, 1), Costed(0.001, 0.001), cache_hit=False, day="20261202")
    await ledger.flush()
    assert (await store.ledger(["20261202"]))["20261202"]["t\tr\tpool\trequests"] == 1


async def test_answers_are_also_counted_by_the_hour_and_the_pools_counters_by_replica() -> None:
    from router.accounting.ledger import served_label
    from router.accounting.windows import hour
    from router.state.base import SEP

    store = MemoryStore()
    ledger = Ledger(lambda: store, Ids("proxyA"))
    ledger.add("t", "r", "pool", Usage(10, 5), Costed(0.001, 0.01), cache_hit=False)
    ledger.served("pool", 700, 70)
    ledger.served("pool", 0, 0)  # nothing served: nothing written
    ledger.up("pool", "spot", 1.5)
    await ledger.flush()
    now = hour(time.time()).label
    got = await store.ledger([now, served_label(now)])
    assert got[now][SEP.join(("t", "r", "pool", "input_tokens"))] == 10
    assert got[served_label(now)] == {
        SEP.join(("pool", "proxyA", "prompt_tokens")): 700,
        SEP.join(("pool", "proxyA", "generation_tokens")): 70,
        SEP.join(("pool", "proxyA", "up_ms", "spot")): 1500,
    }
