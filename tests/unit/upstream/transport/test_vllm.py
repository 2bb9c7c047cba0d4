"""The direct transport against a real emulator on a real port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from router.errors import AttemptFailed, UpstreamRejected
from router.policy.schema import Timeouts
from router.upstream.transport.base import StreamBroken, UpstreamCall
from router.upstream.transport.vllm import VllmTransport
from tests.conftest import url
from tests.faults import ANSWER, fault_app


@pytest.fixture
async def transport() -> AsyncIterator[VllmTransport]:
    async with aiohttp.ClientSession() as session:
        yield VllmTransport(session)


def streamed_text(events: list[bytes]) -> str:
    out = []
    for e in events:
        data = e.removeprefix(b"data: ").strip()
        if data and data != b"[DONE]":
            for c in orjson.loads(data).get("choices") or []:
                out.append(c.get("delta", {}).get("content") or "")
    return "".join(out)


def call(endpoint: str, stream: bool = False, model: str = "m", **body: Any) -> UpstreamCall:
    return UpstreamCall(
        cluster="c",
        endpoint=endpoint,
        upstream_model=model,
        body={"model": "alias", "messages": [{"role": "user", "content": "hi"}], **body},
        stream=stream,
        include_usage=False,
        headers={"x-request-id": "r1"},
        timeouts=Timeouts(connect_s=0.5, first_byte_s=0.5, total_s=2),
    )


async def test_complete(emulator: Any, transport: VllmTransport) -> None:
    server = await emulator(model="m")
    c = await transport.complete(call(url(server), max_tokens=3))
    assert c.usage is not None
    assert c.usage.output_tokens == 3
    assert c.response_model == "m"


async def test_stream_first_event_then_the_rest(emulator: Any, transport: VllmTransport) -> None:
    server = await emulator(model="m")
    s = await transport.stream(call(url(server), stream=True))
    events = [e async for e in s.events()]
    await s.aclose()
    assert events[-1] == b"data: [DONE]\n\n"
    assert s.state.usage is not None
    assert s.state.usage.output_tokens == 16
    assert all(b'"usage":{' not in e for e in events)


async def test_status_mapping(emulator: Any, transport: VllmTransport) -> None:
    server = await emulator(model="m")
    with pytest.raises(AttemptFailed) as info:
        await transport.complete(call(url(server), model="unknown-lora"))
    assert (info.value.kind, info.value.retriable) == ("http_404", True)
    bad = await emulator(model="m", failure_rate=1.0, failure_status=422)
    with pytest.raises(UpstreamRejected) as rejected:
        await transport.complete(call(url(bad)))
    assert rejected.value.status == 422
    down = await emulator(model="m", failure_rate=1.0, failure_status=503)
    with pytest.raises(AttemptFailed, match="HTTP 503"):
        await transport.stream(call(url(down), stream=True))


async def test_connect_and_timeout_failures(emulator: Any, transport: VllmTransport) -> None:
    with pytest.raises(AttemptFailed) as info:
        await transport.complete(call("http://127.0.0.1:9/v1"))
    assert info.value.kind == "connect"
    slow = await emulator(model="m", latency_ms=2000, ttft_ms=2000)
    for stream in (False, True):
        with pytest.raises(AttemptFailed) as timed:
            await (transport.stream if stream else transport.complete)(call(url(slow), stream=stream))
        assert (timed.value.kind, timed.value.timeout) == ("timeout", True)


async def test_break_after_first_event_is_stream_broken(emulator: Any, transport: VllmTransport) -> None:
    server = await emulator(model="m", break_stream_rate=1.0)
    s = await transport.stream(call(url(server), stream=True))
    got: list[bytes] = []

    async def drain() -> None:
        async for e in s.events():
            got.append(e)

    with pytest.raises(StreamBroken):
        await drain()
    await s.aclose()
    assert got


async def test_a_complete_stream_without_done_is_finished_not_broken(
    aiohttp_server: Any, transport: VllmTransport
) -> None:
    """Issue #14: an upstream that sends the finish reason and the usage, then closes without
    ``data: [DONE]``, sent the whole answer; the proxy had appended an error event after it."""
    server = await aiohttp_server(fault_app())
    s = await transport.stream(call(f"http://127.0.0.1:{server.port}/v1", stream=True, model="fb-no-done"))
    events = [e async for e in s.events()]
    await s.aclose()
    assert events[-1] == b"data: [DONE]\n\n"
    assert s.state.finish_reasons == ["stop"]
    assert streamed_text(events) == ANSWER
    cut = await transport.stream(call(f"http://127.0.0.1:{server.port}/v1", stream=True, model="fb-cut"))
    with pytest.raises(StreamBroken):
        _ = [e async for e in cut.events()]  # half an answer, no finish reason: broken
    await cut.aclose()


async def test_a_stream_that_stalls_is_broken_after_its_idle_limit(
    aiohttp_server: Any, transport: VllmTransport
) -> None:
    """Issue #14: a stream that stopped with its connection open waited the whole first_byte_s (30-60 s)."""
    server = await aiohttp_server(fault_app())
    c = call(f"http://127.0.0.1:{server.port}/v1", stream=True, model="fb-stall")
    c = replace(c, timeouts=Timeouts(connect_s=0.5, first_byte_s=5, total_s=10, idle_s=0.3))
    s = await transport.stream(c)
    started = time.monotonic()
    with pytest.raises(StreamBroken) as info:
        _ = [e async for e in s.events()]
    await s.aclose()
    assert info.value.kind == "stall"
    assert 0.25 <= time.monotonic() - started < 2


async def test_a_stream_has_its_own_first_token_limit(aiohttp_server: Any, transport: VllmTransport) -> None:
    """Issue #14: a stream whose first token took 20 s waited the whole first_byte_s."""
    server = await aiohttp_server(fault_app())
    c = call(f"http://127.0.0.1:{server.port}/v1", stream=True, model="fb-slow-first")
    c = replace(c, timeouts=Timeouts(connect_s=0.5, first_byte_s=5, total_s=10, first_token_s=0.3))
    assert c.first_byte_s == 0.3
    assert replace(c, stream=False).first_byte_s == 5  # a whole answer keeps first_byte_s
    started = time.monotonic()
    with pytest.raises(AttemptFailed) as info:
        await transport.stream(c)
    assert info.value.kind == "timeout"
    assert time.monotonic() - started < 1.5


async def test_a_continuation_asks_vllm_to_continue_the_last_message(
    aiohttp_server: Any, transport: VllmTransport
) -> None:
    seen: list[dict[str, Any]] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append(await request.json())
        message = {"role": "assistant", "content": "on"}
        return web.json_response({"id": "c", "model": "m", "choices": [{"index": 0, "message": message}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", capture)
    server = await aiohttp_server(app)
    await transport.complete(replace(call(f"http://127.0.0.1:{server.port}/v1"), prefill=True))
    await transport.complete(call(f"http://127.0.0.1:{server.port}/v1"))
    assert (seen[0]["continue_final_message"], seen[0]["add_generation_prompt"]) == (True, False)
    assert "continue_final_message" not in seen[1]
