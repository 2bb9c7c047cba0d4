"""The decision log (opt-in, ``ROUTER_DECISION_LOG``): what the router decided for each request and what it
tried, kept in the shared state store for ``ROUTER_DECISION_LOG_TTL_S`` under the request's id, so any
replica answers ``GET /v1/admin/decisions/{request_id}`` for a request another one served. Prompts are
never kept unless content capture is on (``ROUTER_CAPTURE_CONTENT``).

The newest ``ROUTER_DECISION_LOG_MAX`` are also kept in order in one shared list: ``GET
/v1/admin/decisions`` (and ``router decisions export``) reads them, as traffic for ``router policy diff``."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import orjson

from router.api.chat import ChatRequest
from router.errors import InvalidRequest, NotFound, StateUnavailable
from router.policy.compiled import Policy
from router.state.base import StateStore
from router.types import RequestFeatures, RequestOutcome

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def key(prefix: str, request_id: str) -> str:
    return f"{prefix}d:{request_id}"


def recent_key(prefix: str) -> str:
    return f"{prefix}decisions"


def replay_fields(f: RequestFeatures, policy: Policy, chat: ChatRequest, capture: bool) -> dict[str, Any]:
    """What ``router policy diff`` needs to route the request again: the model asked for, the request's
    features, the headers some rule of the policy looks at, and its messages only with capture on."""
    out: dict[str, Any] = {
        "model": f.alias,
        "features": {
            "prompt_tokens": f.prompt_tokens,
            "has_tools": f.has_tools,
            "has_images": f.has_images,
            "stream": f.stream,
        },
        "headers": {k: v for k, v in f.headers.items() if k in policy.rule_headers},
    }
    if capture:
        out["messages"] = chat.body.get("messages")
    return out


def record(outcome: RequestOutcome) -> dict[str, Any]:
    """The stored decision: the request's classification, the rule and route it took, the targets in
    order, every attempt with its outcome, and what it cost."""
    doc: dict[str, Any] = {
        "object": "router.decision",
        "at": round(time.time(), 3),
        **outcome.decided(),
        "reason": outcome.reason or None,
        "targets": list(outcome.targets),
    }
    if outcome.usage.output_tokens:
        doc["usage"] = {"input_tokens": outcome.usage.input_tokens, "output_tokens": outcome.usage.output_tokens}
    if outcome.replay is not None:
        doc.update(outcome.replay)
    return doc


class DecisionLog:
    """Writes decisions off the response's path; a store that is away loses them (logged at debug)."""

    def __init__(self, prefix: str, ttl_s: float, cap: int = 10_000) -> None:
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.cap = cap
        self._writing: set[asyncio.Task[None]] = set()

    def remember(self, store: StateStore, outcome: RequestOutcome) -> None:
        value = orjson.dumps(record(outcome))
        task = asyncio.ensure_future(self._write(store, key(self.prefix, outcome.request_id), value))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(self, store: StateStore, k: str, value: bytes) -> None:
        try:
            await store.cache_set(k, value, self.ttl_s)
            await store.log_push(recent_key(self.prefix), value, self.cap, self.ttl_s)
        except StateUnavailable:
            log.debug("decision not kept: state store unavailable")

    async def drain(self) -> None:
        await asyncio.gather(*list(self._writing), return_exceptions=True)


def limit_of(raw: str | None, cap: int) -> int:
    """The ``limit`` query parameter (default 100); a bad one is a 400 naming it."""
    try:
        n = int(raw) if raw else min(100, cap)
    except ValueError:
        n = 0
    if not 1 <= n <= cap:
        raise InvalidRequest(
            f"`limit` must be a whole number from 1 to {cap} (ROUTER_DECISION_LOG_MAX).", param="limit"
        )
    return n


async def recent(store: StateStore, prefix: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` decisions kept, newest first (across replicas: they share one list)."""
    return [orjson.loads(raw) for raw in await store.log_read(recent_key(prefix), limit)]


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
