"""Many concurrent calls, one round trip: while a batch is on the wire the next one gathers, so a lone
call goes at once (in its caller's task) and under load each round trip carries many (the pattern of the
classifier's micro-batching).

A caller cancelled while its queued item was in a batch gets its result handed to ``orphaned`` (to undo
a reservation nobody will settle). A lone call cancelled on the wire cannot know whether the server ran
it: the resilient store then releases the reservation by its id, which is right either way (and its
lease would be reaped when it expired in any case).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    def __init__(
        self,
        send: Callable[[list[In]], Awaitable[Sequence[Out]]],
        most: int = 256,
        orphaned: Callable[[In, Out], None] = lambda item, result: None,
    ) -> None:
        self._send = send
        self._most = most
        self._orphaned = orphaned  # a result whose caller was cancelled meanwhile (to undo it)
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._draining = False
        self._task: asyncio.Future[None] | None = None

    async def submit(self, item: In) -> Out:
        if not self._draining:
            # Nothing on the wire: go at once, in the caller's own task (no hop through another task);
            # whatever queues meanwhile goes in the next round trip.
            self._draining = True
            try:
                (result,) = await self._send([item])
            finally:
                if self._queue:
                    self._task = asyncio.ensure_future(self._drain())
                else:
                    self._draining = False
            return result
        fut: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        return await fut

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._most], self._queue[self._most :]
                try:
                    results = await self._send([item for item, _ in batch])
                except BaseException as exc:  # every caller of the batch gets the failure
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (item, fut), result in zip(batch, results, strict=True):
                    if fut.done():
                        self._orphaned(item, result)
                    else:
                        fut.set_result(result)
        finally:
            self._draining = False
