"""The decision log's record and lookup, over the in-memory store."""

from __future__ import annotations

import pytest

from router.admin.decisions import DecisionLog, lookup, record
from router.errors import NotFound
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
    assert "prompt" not in doc
    assert record(outcome(), prompt="hi")["prompt"] == "hi"


async def test_kept_for_its_time_and_found_by_id() -> None:
    store = MemoryStore()
    log = DecisionLog("t:", ttl_s=60)
    log.remember(store, outcome())
    await log.drain()
    assert (await lookup(store, "t:", "req-1"))["route"] == "general"
    for bad in ("req-2", "../../etc", "x" * 200):
        with pytest.raises(NotFound):
            await lookup(store, "t:", bad)
