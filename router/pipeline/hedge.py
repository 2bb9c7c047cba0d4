"""Hedged requests (a route's ``latency.hedge_after_ms``): when the first target has not answered in that
long, the rest of the chain is tried at the same time and the first answer is kept; the other request is
cancelled, and anything it had opened is closed and given back.

:func:`race` is the pure part: two walks over the chain, started ``delay`` apart, and which one answers.
A walk returns its answer, or None when every target it tried failed (then the other may still answer);
an exception (the request's own fault, such as a content filter's 400) ends the race at once, as it ends
an unhedged request. A walk that fails before the delay is plain failover: the rest of the chain follows
at once, as if there were no hedge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from router.telemetry import names as n

T = TypeVar("T")


@dataclass(frozen=True)
class Raced(Generic[T]):
    """The answer kept (None: neither walk answered), which walk gave it (``first`` or ``rest``), and the
    hedge's outcome: ``primary`` or ``hedge`` (whose answer was kept), ``none`` (neither answered),
    ``budget`` (no hedge could be sent); None: none was needed (the first walk finished, answered or not,
    before the delay)."""

    answer: T | None
    by: str | None
    outcome: str | None = None


@dataclass(frozen=True)
class Hedge(Generic[T]):
    """A race's moving parts: ``first()`` walks the first target; ``rest(hedged)`` the rest of the chain
    (``hedged``: alongside the first, not after it); ``admit()`` takes a hedge's budget (False: none left)
    and ``end()`` gives it back; ``discard(answer)`` closes an answer that was not kept; ``started()`` is
    told when a hedge goes out."""

    first: Callable[[], Coroutine[Any, Any, T | None]]
    rest: Callable[[bool], Coroutine[Any, Any, T | None]]
    admit: Callable[[], bool]
    end: Callable[[], None]
    discard: Callable[[T], Awaitable[None]]
    started: Callable[[], None]


async def race(hedge: Hedge[T], delay: float) -> Raced[T]:
    primary = asyncio.create_task(hedge.first())
    tasks = [primary]
    raced: Raced[T] | None = None
    try:
        done, _ = await asyncio.wait(tasks, timeout=delay)
        if primary in done:  # answered or failed in time: no hedge, plain failover after a failure
            raced = await _then_rest(primary.result(), hedge, None)
        elif not hedge.admit():  # the first cluster's retry budget is spent: wait for it, then fail over
            raced = await _then_rest(await primary, hedge, "budget")
        else:
            try:
                hedge.started()
                tasks.append(asyncio.create_task(hedge.rest(True)))
                raced = await _first_answer(tasks)
            finally:
                hedge.end()
        return raced
    finally:
        await _stop(tasks, hedge, None if raced is None else raced.answer)


async def _then_rest(answer: T | None, hedge: Hedge[T], outcome: str | None) -> Raced[T]:
    if answer is not None:
        return Raced(answer, "first", outcome)
    answer = await hedge.rest(False)
    return Raced(answer, None if answer is None else "rest", outcome)


async def _first_answer(tasks: list[asyncio.Task[T | None]]) -> Raced[T]:
    """The first answer of either walk (the first target's when both are in together); an exception of
    either ends the race."""
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for by, label, task in zip(("first", "rest"), ("primary", "hedge"), tasks, strict=True):
            if task in done and task.exception() is None and task.result() is not None:
                return Raced(task.result(), by, label)
        for task in tasks:
            error = task.exception() if task in done else None
            if error is not None:
                raise error
    return Raced(None, None, "none")


async def _stop(tasks: list[asyncio.Task[T | None]], hedge: Hedge[T], kept: T | None) -> None:
    """Cancel the walks still going (the loser, or both when the client went away) and close whatever a
    walk opened that is not the answer kept (a walk can finish in the moment it is cancelled)."""
    for task in tasks:  # cancelled for good reason: another answer was kept (else the client went away)
        task.cancel(n.HEDGE_LOST if kept is not None else None)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if result is not None and result is not kept and not isinstance(result, BaseException):
            await hedge.discard(result)
