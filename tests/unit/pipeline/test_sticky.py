"""Stickiness, pure parts and the keeper over the in-memory store: what a conversation is, what escalates,
and that a kept conversation moves up, never down."""

from __future__ import annotations

import orjson

from router.api.chat import ChatRequest, features, parse_chat_request
from router.pipeline import sticky
from router.policy.compile import Policy, compile_texts
from router.state.memory import MemoryStore

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, endpoints: ["http://p/v1"], model: m}
  api: {kind: frontier, model: openai/m, price: {input_usd_per_mtok: 1, output_usd_per_mtok: 1}}
models:
  auto:
    default_route: cheap
    stickiness: {by: conversation, escalate_on: [tools, long_prompt, header], long_prompt_tokens: 50}
  plain: {default_route: cheap}
  pinned: {cluster: pool}
routes:
  - {name: big, cluster: api, match: {has_tools: true}}
  - {name: cheap, cluster: pool, match: {}}
"""


def _policy() -> Policy:
    return compile_texts([("p.yaml", POLICY)], env={})


def _chat(model: str = "auto", first: str = "hi", **extra: object) -> ChatRequest:
    body = {"model": model, "messages": [{"role": "user", "content": first}], **extra}
    return parse_chat_request(orjson.dumps(body))


def test_what_a_conversation_is() -> None:
    policy = _policy()
    one = sticky.conversation(policy, _chat(), {}, "t", "p:")
    assert one is not None
    assert one.key.startswith("p:k:t:auto:")
    assert sticky.conversation(policy, _chat(), {}, "t", "p:") == one  # the same opening: the same one
    assert sticky.conversation(policy, _chat(first="other"), {}, "t", "p:") != one
    assert sticky.conversation(policy, _chat(), {"x-session-id": "s"}, "t", "p:") != one
    assert sticky.conversation(policy, _chat(), {}, "u", "p:") != one  # tenants never share
    assert sticky.conversation(policy, _chat("plain"), {}, "t", "p:") is None


def test_escalation_signals() -> None:
    cfg = _policy().models["auto"].stickiness
    assert cfg is not None
    chat = _chat()
    assert sticky.escalation(cfg, features(chat, {}, "t"), {}) is None
    tools = _chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    assert sticky.escalation(cfg, features(tools, {}, "t"), {}) == "tools"
    long = _chat(first="word " * 200)
    assert (sticky.escalation(cfg, features(long, {}, "t"), {}) or "").startswith("prompt of")
    assert sticky.escalation(cfg, features(chat, {}, "t"), {"x-router-quality": "High"}) == "x-router-quality: high"


def test_a_kept_conversation_moves_up_never_down() -> None:
    policy = _policy()
    cheap, big = policy.route_decision("cheap"), policy.route_decision("big")
    assert cheap is not None
    assert big is not None
    up, moved = sticky.settle(policy, cheap, big, "tools")
    assert (up.route, moved) == ("big", True)
    assert "moved up from 'cheap' (tools)" in up.reason
    down, moved = sticky.settle(policy, big, cheap, "tools")
    assert (down.route, moved) == ("big", False)
    assert "'cheap' is not higher" in down.reason


async def test_the_keeper_remembers_a_route_and_forgets_one_a_reload_removed() -> None:
    policy, store = _policy(), MemoryStore()
    keeper = sticky.Keeper(lambda: store)
    conv = sticky.conversation(policy, _chat(), {}, "t", "p:")
    assert conv is not None
    assert await keeper.recall(policy, conv) is None
    big = policy.route_decision("big")
    assert big is not None
    await keeper.keep(conv, big)
    kept = await keeper.recall(policy, conv)
    assert kept is not None
    assert (kept.route, kept.reason) == ("big", "conversation kept on route 'big' (conversation)")
    await store.cache_set(conv.key, b"gone", 60)
    assert await keeper.recall(policy, conv) is None


def test_a_pinned_alias_cannot_stick() -> None:
    import pytest

    from router.errors import PolicyError

    bad = POLICY.replace("pinned: {cluster: pool}", "pinned: {cluster: pool, stickiness: {by: session}}")
    with pytest.raises(PolicyError, match="stickiness"):
        compile_texts([("p.yaml", bad)], env={})
