"""Conversations keep their route across turns and across three replicas sharing Redis (issue #16, part 5):
a kept turn skips the rules, a turn with tools moves the conversation up to the frontier, and nothing
moves it back down."""

from __future__ import annotations

from typing import Any

from tests.conftest import EmulatorFactory, ProxyFactory, url
from tests.redis_servers import SHARED_URL

POLICY = """
version: 1
clusters:
  pool: {{kind: vllm, endpoints: ["{pool}"], model: small-model}}
  api:
    kind: frontier
    model: openai/frontier-model
    api_key_env: TEST_FRONTIER_KEY
    api_base: {api}
    price: {{input_usd_per_mtok: 1, output_usd_per_mtok: 4}}
models:
  auto:
    default_route: cheap
    stickiness: {{by: conversation, ttl_s: 60}}
routes:
  - {{name: tools, cluster: api, match: {{has_tools: true}}}}
  - {{name: asked-big, cluster: api, match: {{headers: {{x-tier: big}}}}}}
  - {{name: cheap, cluster: pool, match: {{}}}}
costs: {{baseline_model: openai/gpt-4o, baseline_price: {{input_usd_per_mtok: 1, output_usd_per_mtok: 1}}}}
"""
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


def turns(n: int, **extra: Any) -> dict[str, Any]:
    """The same conversation (system prompt and first user turn) at its n-th turn."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You help."}, {"role": "user", "content": "hi"}]
    for i in range(1, n):
        messages += [{"role": "assistant", "content": f"answer {i}"}, {"role": "user", "content": f"more {i}"}]
    return {"model": "auto", "messages": messages, **extra}


async def test_a_conversation_keeps_its_route_across_replicas_and_only_moves_up(
    emulator: EmulatorFactory, proxy: ProxyFactory, prefix: str
) -> None:
    pool, api = await emulator(model="small-model"), await emulator(model="frontier-model")
    text = POLICY.format(pool=url(pool), api=url(api))
    replicas = [await proxy(text, redis_url=SHARED_URL, state_prefix=prefix) for _ in range(3)]

    async def send(replica: int, body: dict[str, Any], **headers: str) -> tuple[str, str]:
        resp = await replicas[replica].post("/v1/chat/completions", json=body, headers=headers)
        assert resp.status == 200, await resp.text()
        return resp.headers["x-router-route"], resp.headers["x-router-cluster"]

    assert await send(0, turns(1)) == ("cheap", "pool")
    # A later turn that the rules alone would send to the frontier stays where the conversation began,
    # on another replica: the decision is shared through Redis.
    assert await send(1, turns(2), **{"x-tier": "big"}) == ("cheap", "pool")
    # Tools are an escalation signal: decided afresh, and the frontier is higher: it moves up ...
    assert await send(2, turns(3, tools=TOOLS)) == ("tools", "api")
    # ... and stays up, though nothing asks for it any more.
    assert await send(0, turns(4)) == ("tools", "api")
    # Explain says so: the rules alone would pick `asked-big`; the conversation stays up on `tools`.
    explained = await (await replicas[1].post("/v1/route/explain", json=turns(5), headers={"x-tier": "big"})).json()
    assert explained["decision"]["route"] == "asked-big"
    assert explained["sticky"] == {
        "by": "conversation",
        "kept_route": "tools",
        "escalation": None,
        "route": "tools",
        "reason": "conversation kept on route 'tools' (conversation)",
    }
    # Another conversation is decided alone.
    other = {"model": "auto", "messages": [{"role": "user", "content": "something else"}]}
    assert await send(1, other, **{"x-tier": "big"}) == ("asked-big", "api")
    # The same conversation under a session id of its own is another conversation.
    assert await send(2, turns(2), **{"x-session-id": "s-1"}) == ("cheap", "pool")
