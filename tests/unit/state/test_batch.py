from __future__ import annotations

import asyncio

import pytest

from router.state.batch import Batcher


async def test_a_lone_call_goes_at_once_and_concurrent_ones_share_round_trips() -> None:
    sent: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    b: Batcher[int, int] = Batcher(send, most=50)
    assert await b.submit(1) == 10
    results = await asyncio.gather(*(b.submit(i) for i in range(120)))
    assert results == [i * 10 for i in range(120)]
    assert sent[0] == [1]
    assert len(sent) <= 5  # 120 calls in a handful of round trips (50 at most each)
    assert max(len(s) for s in sent) <= 50


async def test_failures_reach_every_caller_of_the_batch_and_orphans_are_undone() -> None:
    orphans: list[tuple[int, int]] = []

    async def failing(items: list[int]) -> list[int]:
        raise ConnectionError("down")

    b: Batcher[int, int] = Batcher(failing)
    with pytest.raises(ConnectionError):
        await b.submit(1)

    gate = asyncio.Event()

    async def slow(items: list[int]) -> list[int]:
        await gate.wait()
        return items

    c: Batcher[int, int] = Batcher(slow, orphaned=lambda item, result: orphans.append((item, result)))
    first = asyncio.ensure_future(c.submit(1))  # on the wire
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(c.submit(7))  # waits for the next round trip
    await asyncio.sleep(0)
    queued.cancel()  # its caller goes away before the answer
    gate.set()
    assert await first == 1
    await asyncio.sleep(0.01)
    assert orphans == [(7, 7)]  # the result nobody waited for is handed back to be undone
