"""The chat endpoint through the real app and real emulator servers: answers, streams, pass-through."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from router.emulator.app import STATE as EMU
from tests.conftest import chat_body


def events(raw: bytes) -> list[bytes]:
    return [e[len(b"data: ") :] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]


async def test_auto_routes_to_pool_with_router_headers(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/chat/completions", json=chat_body())
    assert resp.status == 200
    assert resp.headers["x-router-route"] == "general"
    assert resp.headers["x-router-cluster"] == "pool"
    assert resp.headers["x-router-upstream-model"] == "small-model"
    assert len(resp.headers["x-request-id"]) == 32
    body = await resp.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["completion_tokens"] == 16


async def test_caller_request_id_is_kept(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/chat/completions", json=chat_body(), headers={"x-request-id": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    assert basic["pool"].app[EMU].last_headers["x-request-id"] == "abc-123"


async def test_pinned_lora_alias_names_the_adapter_upstream(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/chat/completions", json=chat_body("lora"))
    assert resp.status == 200
    assert resp.headers["x-router-route"] == "model:lora"
    assert resp.headers["x-router-upstream-model"] == "extract-lora"
    assert basic["pool"].app[EMU].last_request["model"] == "extract-lora"


async def test_uninterpreted_fields_pass_through_unchanged(basic: dict[str, Any]) -> None:
    extra = {
        "seed": 7,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["\n\n"],
        "n": 1,
        "logprobs": True,
        "top_logprobs": 2,
        "response_format": {"type": "json_object"},
        "top_k": 40,
        "chat_template_kwargs": {"enable_thinking": False},
        "user": "svc-a",
        "max_tokens": 5,
    }
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    body = {"model": "pinned", "messages": messages, **extra}
    resp = await basic["client"].post("/v1/chat/completions", json=body)
    assert resp.status == 200
    sent = basic["pool"].app[EMU].last_request
    assert sent == {**body, "model": "small-model"}
    assert (await resp.json())["usage"]["completion_tokens"] == 5


async def test_stream_with_usage_relays_every_event(basic: dict[str, Any]) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    resp = await basic["client"].post("/v1/chat/completions", json=body)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["x-router-cluster"] == "pool"
    got = events(await resp.read())
    assert got[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in got[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]).startswith("this is")
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 16


async def test_stream_without_usage_hides_the_usage_chunk_but_counts_tokens(basic: dict[str, Any]) -> None:
    client = basic["client"]
    resp = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    got = events(await resp.read())
    assert got[-1] == b"[DONE]"
    assert all(b'"usage":{' not in e for e in got)
    # The upstream was asked for usage anyway, so the proxy can account the stream.
    assert basic["pool"].app[EMU].last_request["stream_options"] == {"include_usage": True}
    metrics = await (await client.get("/metrics")).text()
    assert 'router_tokens_total{cluster="pool",route="general",type="output"} 16.0' in metrics


async def test_tools_go_to_frontier_through_litellm(basic: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    resp = await basic["client"].post("/v1/chat/completions", json=chat_body(tools=tools, tool_choice="auto"))
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-router-route"] == "tools"
    assert resp.headers["x-router-cluster"] == "frontier"
    assert resp.headers["x-router-upstream-model"] == "openai/frontier-model"
    body = await resp.json()
    assert body["object"] == "chat.completion"
    assert body["usage"]["completion_tokens"] == 16
    sent = basic["frontier"].app[EMU].last_request
    assert sent["tools"] == tools
    assert sent["tool_choice"] == "auto"
    assert basic["frontier"].app[EMU].last_headers["authorization"] == "Bearer sk-test"


async def test_frontier_stream(basic: dict[str, Any]) -> None:
    body = chat_body("frontier", stream=True, stream_options={"include_usage": True})
    resp = await basic["client"].post("/v1/chat/completions", json=body)
    assert resp.status == 200
    got = events(await resp.read())
    assert got[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in got[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.startswith("this is an emulated")
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 16
    assert "cost" not in chunks[-1]["usage"]


async def test_models_lists_the_policy_aliases(basic: dict[str, Any]) -> None:
    resp = await basic["client"].get("/v1/models")
    body = await resp.json()
    assert body["object"] == "list"
    assert {m["id"] for m in body["data"]} == {"auto", "pinned", "lora", "frontier"}
    assert "x-request-id" in resp.headers


async def test_health_and_readiness(basic: dict[str, Any]) -> None:
    client = basic["client"]
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["clusters"]["pool"] == {"ready": True, "endpoints_up": 1, "endpoints": 1}


async def test_not_ready_when_no_upstream_is_reachable(proxy: Any) -> None:
    policy = """
version: 1
clusters:
  dead: {kind: vllm, endpoints: ["http://127.0.0.1:9/v1"], model: m}
models:
  m: {cluster: dead}
"""
    client = await proxy(policy)
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["clusters"]["dead"]["endpoints_up"] == 0


async def test_router_explain_asks_a_running_proxy(basic: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from router.cli.main import main

    base = str(basic["client"].make_url("")).rstrip("/")
    args = ["explain", "--url", base, "--message", "hello there", "--header", "x-tenant-hint: none"]
    assert await asyncio.to_thread(main, args) == 0
    doc = orjson.loads(capsys.readouterr().out)
    remote = await (await basic["client"].post("/v1/route/explain", json=chat_body(content="hello there"))).json()
    assert doc["decision"] == remote["decision"]
    assert await asyncio.to_thread(main, ["explain", "--url", "http://127.0.0.1:9", "--message", "x"]) == 1
    assert "error: http://127.0.0.1:9/v1/route/explain" in capsys.readouterr().err
