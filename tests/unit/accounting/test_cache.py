"""The response cache: which requests may be cached, per tenant, and what an entry brings back."""

from __future__ import annotations

import orjson

from router.accounting.cache import AnswerCache, deterministic
from router.api.chat import ChatRequest, parse_chat_request
from router.policy.schema import ResponseCache
from router.state.memory import MemoryStore
from router.telemetry.metrics import Metrics
from router.types import Usage
from router.upstream.transport.base import Completion

ON = ResponseCache(enabled=True, ttl_s=60, max_body_bytes=1000)


def _chat(**extra: object) -> ChatRequest:
    return parse_chat_request(orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}], **extra}))


def test_only_deterministic_unstreamed_requests_with_the_cache_on_have_a_key() -> None:
    store = MemoryStore()
    cache = AnswerCache(lambda: store, Metrics(), "p:")
    assert deterministic({"temperature": 0})
    assert deterministic({"seed": 7})
    assert not deterministic({"temperature": 0.2})
    assert cache.key(ON, "t", _chat()) is None
    assert cache.key(ON, "t", _chat(temperature=0, stream=True)) is None
    assert cache.key(ResponseCache(), "t", _chat(temperature=0)) is None  # off by default
    key = cache.key(ON, "t", _chat(temperature=0))
    assert key is not None
    assert key.startswith("p:c:t:")
    assert cache.key(ON, "u", _chat(temperature=0)) != key  # per tenant
    assert cache.key(ON, "t", _chat(temperature=0, user="someone")) == key  # fields that do not change the answer


async def test_an_entry_brings_back_the_answer_and_where_it_came_from() -> None:
    store, metrics = MemoryStore(), Metrics()
    cache = AnswerCache(lambda: store, metrics, "p:")
    key = cache.key(ON, "t", _chat(temperature=0))
    assert key is not None
    assert await cache.get(key) is None
    answer = Completion(b'{"choices": []}', Usage(3, 2), "m-1", ("stop",))
    await cache.put(ON, key, answer, "pool", "m-1")
    hit = await cache.get(key)
    assert hit is not None
    assert (hit.cluster, hit.model) == ("pool", "m-1")
    assert hit.completion.payload == answer.payload
    assert hit.completion.usage == Usage(3, 2)
    assert metrics.registry.get_sample_value("router_response_cache_lookups_total", {"result": "hit"}) == 1


async def test_too_large_or_usage_less_answers_are_not_cached() -> None:
    store = MemoryStore()
    cache = AnswerCache(lambda: store, Metrics(), "p:")
    await cache.put(ON, "k1", Completion(b"x" * 1001, Usage(1, 1), "m", ()), "pool", "m")
    await cache.put(ON, "k2", Completion(b"{}", None, "m", ()), "pool", "m")
    assert await cache.get("k1") is None
    assert await cache.get("k2") is None
