from __future__ import annotations

import asyncio
import threading
import time

import pytest

from router.upstream.transport.background import BackgroundLoop


async def test_runs_on_its_own_thread_and_keeps_this_loop_free() -> None:
    bg = BackgroundLoop("test-bg")
    bg.start()
    bg.start()  # idempotent
    try:

        async def busy() -> str:
            time.sleep(0.3)  # noqa: ASYNC251 - on purpose: work that blocks whatever loop runs it
            return threading.current_thread().name

        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        assert await bg.run(busy()) == "test-bg"
        t.cancel()
        assert ticks >= 10  # this loop went on ticking meanwhile
    finally:
        bg.stop()


async def test_cancelling_the_waiter_cancels_the_work() -> None:
    bg = BackgroundLoop("test-bg-cancel")
    bg.start()
    cancelled = threading.Event()
    try:

        async def slow() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await bg.run(slow())
        assert await asyncio.to_thread(cancelled.wait, 2)
    finally:
        bg.stop()


async def test_not_started_is_an_error() -> None:
    async def nothing() -> None:
        return None

    coro = nothing()
    with pytest.raises(RuntimeError, match="not started"):
        await BackgroundLoop("idle").run(coro)
    coro.close()
