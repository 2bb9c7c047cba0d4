"""Each replica's periodic read of the pools' economics over the last hours, for the ``/metrics`` gauges."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from router.accounting import windows
from router.accounting.economics import economics
from router.accounting.ledger import served_label
from router.errors import StateUnavailable
from router.policy.compile import Policy
from router.state.base import StateStore

log = logging.getLogger(__name__)

EVERY_S = 10.0
HOURS = 2  # the hour under way and the one before: never less than an hour of ledger


async def trailing(store: StateStore, policy: Policy, now: float, hours: int = HOURS) -> dict[str, Any]:
    """The economics of the last ``hours`` UTC hours (the current one up to ``now``), as JSON."""
    labels = [w.label for w in windows.hours_back(now, hours)]
    ledgers = await store.ledger(labels)
    served = await store.ledger([served_label(h) for h in labels])
    current = windows.hour(now)
    window_s = (hours - 1) * 3600 + (now - (current.ends - 3600))
    return economics(policy, ledgers, served, window_s).as_json()


async def watch(
    store: Callable[[], StateStore],
    policy: Callable[[], Policy],
    publish: Callable[[dict[str, Any]], None],
    every_s: float = EVERY_S,
) -> None:
    """Publish the trailing economics every ``every_s``; while the store is away the last figures stay."""
    while True:
        try:
            publish(await trailing(store(), policy(), time.time()))
        except StateUnavailable:
            log.debug("economics not refreshed: state store unavailable")
        await asyncio.sleep(every_s)
