"""The response cache: deterministic requests (temperature 0 or a seed), exact match per tenant, in the
shared state store, when the policy enables it. An entry is the answer's payload behind one JSON line
naming the cluster and model that answered and the usage it reported."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from router.api.chat import ChatRequest
from router.policy.schema_accounting import ResponseCache
from router.state.base import StateStore
from router.telemetry.metrics import Metrics
from router.types import Usage
from router.upstream.transport.base import Completion

# Body fields that do not change the answer, left out of the cache key.
NOT_IN_CACHE_KEY = frozenset({"stream", "stream_options", "user", "metadata", "store"})


def deterministic(body: Mapping[str, Any]) -> bool:
    t = body.get("temperature")
    return (isinstance(t, int | float) and t == 0) or isinstance(body.get("seed"), int)


@dataclass(frozen=True, slots=True)
class Cached:
    """A cached answer and where it first came from."""

    completion: Completion
    cluster: str
    model: str


class AnswerCache:
    """The response cache (the policy's ``cache`` section configures it)."""

    def __init__(self, store: Callable[[], StateStore], metrics: Metrics, prefix: str) -> None:
        self._store = store
        self._metrics = metrics
        self._prefix = prefix

    def key(self, config: ResponseCache, tenant: str, chat: ChatRequest) -> str | None:
        """The request's cache key, or None when it may not be cached (cache off, streamed, not
        deterministic)."""
        if not config.enabled or chat.stream or not deterministic(chat.body):
            return None
        body = {k: v for k, v in chat.body.items() if k not in NOT_IN_CACHE_KEY}
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"{self._prefix}c:{tenant}:{digest}"

    async def get(self, key: str) -> Cached | None:
        raw = await self._store().cache_get(key)
        self._metrics.cache_lookups.labels("hit" if raw is not None else "miss").inc()
        if raw is None:
            return None
        head, _, payload = raw.partition(b"\n")
        meta = orjson.loads(head)
        usage = Usage(int(meta["usage"][0]), int(meta["usage"][1]))
        model = str(meta["model"])
        return Cached(Completion(payload, usage, model, ()), str(meta["cluster"]), model)

    async def put(self, config: ResponseCache, key: str, result: Completion, cluster: str, model: str | None) -> None:
        if len(result.payload) > config.max_body_bytes or result.usage is None:
            return
        usage = [result.usage.input_tokens, result.usage.output_tokens]
        meta = {"cluster": cluster, "model": model, "usage": usage}
        await self._store().cache_set(key, orjson.dumps(meta) + b"\n" + result.payload, config.ttl_s)
