"""The HTTP handlers over an in-process router state (mock transports, no upstream sockets): the chat
endpoint non-streamed and streamed, the models list, readiness by cluster kind, and body limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from router.http import handlers
from router.http.keys import ACCOUNTING, PIPELINE, STATE
from router.http.middleware import api_middleware
from router.pipeline.sequence import Pipeline, accounting_of
from router.serving import RouterState
from router.types import Usage
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import Events, MockTransport
from tests.unit.inproc import inproc_state

Client = TestClient[Any, Any]
ANSWER = {"id": "c", "object": "chat.completion", "model": "m", "choices": []}


async def _ok(call: UpstreamCall) -> Completion | Events:
    if call.stream:
        chunk = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
        return [b"data: " + orjson.dumps(chunk) + b"\n\n", b"data: [DONE]\n\n"]
    return Completion(orjson.dumps(ANSWER), Usage(5, 7), "m", ("stop",))


def _app(state: RouterState) -> web.Application:
    app = web.Application(client_max_size=state.settings.max_body_bytes, middlewares=[api_middleware])
    app[STATE] = state
    app[ACCOUNTING] = accounting = accounting_of(state)
    app[PIPELINE] = Pipeline(state, accounting)
    app.router.add_post("/v1/chat/completions", handlers.chat_completions)
    app.router.add_get("/v1/models", handlers.list_models)
    app.router.add_get("/readyz", handlers.readyz)
    return app


async def _client(aiohttp_client: Callable[..., Awaitable[Client]], state: RouterState | None = None) -> Client:
    state = state or inproc_state({"pool": MockTransport(_ok), "api": MockTransport(_ok)})
    return await aiohttp_client(_app(state))


def _body(**extra: object) -> dict[str, object]:
    return {"model": "pool", "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_an_answer_with_the_router_headers(aiohttp_client: Callable[..., Awaitable[Client]]) -> None:
    client = await _client(aiohttp_client)
    resp = await client.post("/v1/chat/completions", json=_body())
    assert resp.status == 200
    assert await resp.json() == ANSWER  # the upstream's body, byte for byte
    assert resp.headers["x-router-cluster"] == "pool"
    assert resp.headers["x-router-route"] == "model:pool"
    assert float(resp.headers["x-router-cost-usd"]) > 0


async def test_a_stream_is_server_sent_events_ending_in_done(aiohttp_client: Callable[..., Awaitable[Client]]) -> None:
    client = await _client(aiohttp_client)
    resp = await client.post("/v1/chat/completions", json=_body(stream=True))
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    text = await resp.text()
    assert text.endswith("data: [DONE]\n\n")
    assert ": router-cost " in text


async def test_models_lists_the_policys_aliases(aiohttp_client: Callable[..., Awaitable[Client]]) -> None:
    client = await _client(aiohttp_client)
    doc = await (await client.get("/v1/models")).json()
    assert sorted(m["id"] for m in doc["data"]) == ["api", "pool"]


async def test_readiness_follows_the_clusters(aiohttp_client: Callable[..., Awaitable[Client]]) -> None:
    state = inproc_state({"pool": MockTransport(_ok), "api": MockTransport(_ok)})
    client = await _client(aiohttp_client, state)
    assert (await client.get("/readyz")).status == 200
    for e in state.serving.upstreams.clusters["pool"].endpoints:
        e.healthy = False
    assert (await client.get("/readyz")).status == 200  # the frontier API is still there
    state.serving.upstreams.clusters["api"].unavailable_reason = "no API key"
    assert (await client.get("/readyz")).status == 503


async def test_bad_bodies_are_openai_errors(aiohttp_client: Callable[..., Awaitable[Client]]) -> None:
    client = await _client(aiohttp_client)
    resp = await client.post("/v1/chat/completions", data=b"{not json")
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "invalid_request_error"
    resp = await client.post("/v1/chat/completions", data=b"x" * (client.app[STATE].settings.max_body_bytes + 1))
    assert resp.status == 413
