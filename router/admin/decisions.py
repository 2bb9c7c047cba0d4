"""The decision log (opt-in, ``ROUTER_DECISION_LOG``): what the router decided for each request and what it
tried, kept in the shared state store for ``ROUTER_DECISION_LOG_TTL_S`` under the request's id, so any
replica answers ``GET /v1/admin/decisions/{request_id}`` for a request another one served. Prompts are
never kept unless content capture is on (``ROUTER_CAPTURE_CONTENT``)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import orjson

from router.errors import NotFound, StateUnavailable
from router.state.base import StateStore
from router.types import RequestOutcome

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def key(prefix: str, request_id: str) -> str:
    return f"{prefix}d:{request_id}"


def record(outcome: RequestOutcome, prompt: str | None = None) -> dict[str, Any]:
    """The stored decision: the request's classification, the rule and route it took, the targets in
    order, every attempt with its outcome, and what it cost."""
    doc: dict[str, Any] = {
        "object": "router.decision",
        "request_id": outcome.request_id,
        "at": round(time.time(), 3),
        "policy": outcome.policy or None,
        "tenant": outcome.tenant or None,
        "alias": outcome.alias or None,
        "task": outcome.task,
        "confidence": outcome.confidence,
        "complexity": outcome.complexity,
        "rule": outcome.rule,
        "route": outcome.route or None,
        "reason": outcome.reason or None,
        "targets": list(outcome.targets),
        "skipped": list(outcome.skipped),
        "tried": [a.as_json() for a in outcome.attempts],
        "status": outcome.status,
        "cluster": outcome.cluster or None,
        "error_type": outcome.error_type,
        "cost_usd": outcome.cost_usd,
        "baseline_cost_usd": outcome.baseline_cost_usd,
    }
    if prompt is not None:
        doc["prompt"] = prompt
    return doc


class DecisionLog:
    """Writes decisions off the response's path; a store that is away loses them (logged at debug)."""

    def __init__(self, prefix: str, ttl_s: float) -> None:
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._writing: set[asyncio.Task[None]] = set()

    def remember(self, store: StateStore, outcome: RequestOutcome, prompt: str | None = None) -> None:
        value = orjson.dumps(record(outcome, prompt))
        task = asyncio.ensure_future(self._write(store, key(self.prefix, outcome.request_id), value))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(self, store: StateStore, k: str, value: bytes) -> None:
        try:
            await store.cache_set(k, value, self.ttl_s)
        except StateUnavailable:
            log.debug("decision not kept: state store unavailable")

    async def drain(self) -> None:
        await asyncio.gather(*list(self._writing), return_exceptions=True)


async def lookup(store: StateStore, prefix: str, request_id: str) -> dict[str, Any]:
    if not REQUEST_ID.match(request_id):
        raise NotFound(f"no decision is kept for request id {request_id[:64]!r}.")
    raw = await store.cache_get(key(prefix, request_id))
    if raw is None:
        raise NotFound(
            f"no decision is kept for request id {request_id!r}: unknown, older than ROUTER_DECISION_LOG_TTL_S, "
            "or served while ROUTER_DECISION_LOG was off."
        )
    doc: dict[str, Any] = orjson.loads(raw)
    return doc
