"""The decision log's record and lookup, over the in-memory store."""

from __future__ import annotations

import pytest

from router.admin.decisions import DecisionLog, limit_of, lookup, recent, record, replay_fields
from router.errors import InvalidRequest, NotFound
from router.state.memory import MemoryStore
from router.types import AttemptRecord, RequestOutcome


def outcome() -> RequestOutcome:
    o = RequestOutcome("req-1", tenant="acme", alias="auto", route="general", rule="general", status=200)
    o.targets, o.task, o.confidence, o.policy = ["pool:extract-lora", "api"], "extraction", 0.91, "0123456789ab"
    o.attempts = [AttemptRecord("pool", "http://a/v1", "m", "error", "http_500", seconds=0.012)]
    o.attempts.append(AttemptRecord("api", "openai", "m", "success", seconds=0.3))
    return o


def test_the_record_says_what_was_decided_and_tried_without_the_prompt() -> None:
    doc = record(outcome())
    assert (doc["rule"], doc["task"], doc["confidence"], doc["policy"]) == (
        "general",
        "extraction",
        0.91,
        "0123456789ab",
    )
    assert doc["targets"] == ["pool:extract-lora", "api"]
    assert doc["tried"][0] == {
        "cluster": "pool", "endpoint": "http://a/v1", "outcome": "error", "error_type": "http_500", "ms": 12.0,
    }  # fmt: skip
    assert "messages" not in doc
    with_replay = outcome()
    with_replay.replay = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    assert record(with_replay)["messages"] == [{"role": "user", "content": "hi"}]


def test_replay_fields_keep_the_rules_headers_and_the_messages_only_with_capture() -> None:
    from router.api.chat import features, parse_chat_request
    from tests.unit.pools import compiled

    policy = compiled(
        """
version: 1
clusters: {p: {kind: vllm, endpoints: ["http://a:1"], model: m}}
models: {auto: {default_route: r}}
routes:
  - {name: vip, match: {headers: {x-tier: gold}}, cluster: p}
  - {name: r, target_only: true, cluster: p}
"""
    )
    chat = parse_chat_request(b'{"model": "auto", "messages": [{"role": "user", "content": "hello"}], "stream": true}')
    headers = {"x-tier": "gold", "authorization": "Bearer sk-secret", "cookie": "c"}
    fields = replay_fields(features(chat, headers, "acme"), policy, chat, capture=False)
    assert fields["headers"] == {"x-tier": "gold"}  # never the credentials
    assert fields["features"]["stream"] is True
    assert fields["model"] == "auto"
    assert "messages" not in fields
    captured = replay_fields(features(chat, headers, "acme"), policy, chat, capture=True)
    assert captured["messages"] == [{"role": "user", "content": "hello"}]


async def test_kept_for_its_time_and_found_by_id() -> None:
    store = MemoryStore()
    log = DecisionLog("t:", ttl_s=60)
    log.remember(store, outcome())
    await log.drain()
    assert (await lookup(store, "t:", "req-1"))["route"] == "general"
    for bad in ("req-2", "../../etc", "x" * 200):
        with pytest.raises(NotFound):
            await lookup(store, "t:", bad)


async def test_the_newest_decisions_are_listed_newest_first_within_the_cap() -> None:
    store = MemoryStore()
    log = DecisionLog("t:", ttl_s=60, cap=3)
    for i in range(5):
        o = outcome()
        o.request_id = f"req-{i}"
        log.remember(store, o)
        await log.drain()
    assert [d["request_id"] for d in await recent(store, "t:", 10)] == ["req-4", "req-3", "req-2"]
    assert limit_of(None, 10_000) == 100
    assert limit_of("7", 10) == 7
    for bad in ("0", "11", "x", "-1"):
        with pytest.raises(InvalidRequest):
            limit_of(bad, 10)
