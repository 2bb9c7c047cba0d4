"""Replicas share their view of the clusters through the state store; a silent one drops out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time

from router.admin.replicas import STALE_AFTER, publish, replica_name, views
from router.state.memory import MemoryStore


async def test_each_replica_is_seen_by_its_newest_view_until_it_falls_silent() -> None:
    store = MemoryStore()
    counts = {"a": 0, "b": 0}

    def view(name: str) -> dict[str, object]:
        counts[name] += 1
        return {"policy": "0123456789ab", "clusters": [], "pushes": counts[name]}

    tasks = [
        asyncio.create_task(publish(lambda: store, "t:", n, functools.partial(view, n), every_s=0.05)) for n in counts
    ]
    await asyncio.sleep(0.18)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    now = time.time()
    seen = await views(store, "t:", now, every_s=0.05)
    assert list(seen) == ["a", "b"]
    assert seen["a"]["pushes"] == counts["a"] >= 3  # the newest of each
    assert seen["b"]["policy"] == "0123456789ab"
    assert await views(store, "t:", now + STALE_AFTER * 0.05 + 1, every_s=0.05) == {}  # silent: gone


def test_a_replica_is_named_by_its_host_and_port() -> None:
    assert replica_name(8080).endswith(":8080")
    assert replica_name(0) != replica_name(0)  # port 0: a random tag keeps replicas in one process apart
