"""A fault-injecting OpenAI-compatible upstream of the tests' own (not the emulator's friendly failures).

The fault is chosen by the model name the proxy sends (one cluster per fault in a policy), or, for the
trust-boundary tests, by the last user message's first word. Every answer that succeeds is :data:`ANSWER`,
streamed one word per chunk, so a test can check that a rescued answer is exact, not truncated.

    model           what the upstream does
    fb-ok           answers
    fb-429-ra       429 with ``Retry-After: 1`` on the first request, then answers
    fb-429          429 without Retry-After on the first request, then answers
    fb-500-once     500 on the first request, then answers
    fb-503          503, always
    fb-reset        closes the TCP connection before any header
    fb-hang         never answers (holds the connection)
    fb-slow-first   the first token after ``SLOW_S`` seconds
    fb-cut          a stream cut (connection closed) after half the answer
    fb-stall        a stream that stops after half the answer, the connection left open
    fb-malformed    a stream with a chunk that is not JSON, then the rest
    fb-no-done      a complete stream (finish reason, usage) that ends without ``data: [DONE]``
    fb-context      400 ``context_length_exceeded``
    fb-filter       400 ``content_filter``
    fb-no-prefill   answers, but refuses (400) a conversation ending in an assistant message (prefill)
    fb-flap         503 until ``FaultState.down_until`` (monotonic), then answers

    word            (first word of the last user message, any model)
    reject          400 with an OpenAI error (the request is "bad")
    denied          401 with a provider's words about the operator's key
    slow            answers after ``SLOW_S`` seconds

``GET /health`` answers 200 except for a ``fb-flap`` still down (``/health`` is the server's, so it is down
while that model is down) . The app keeps every request body (``REQUESTS``) and, per model, the monotonic
times of its requests (``SEEN``): attempts and the gaps between them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

SLOW_S = 2.0
ANSWER = "The quick brown fox jumps over the lazy dog near the quiet river bank today."
DENIED = "Incorrect API key provided: sk-OPERA****6789. You can find your API key at https://example.invalid."
USAGE = {"prompt_tokens": 5, "completion_tokens": len(ANSWER.split()), "total_tokens": 5 + len(ANSWER.split())}


@dataclass
class FaultState:
    requests: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    down_until: float = 0.0  # fb-flap answers 503 until then


STATE = web.AppKey("fault_state", FaultState)
REQUESTS = web.AppKey("requests", list)  # the same list as FaultState.requests (older tests read this key)


def _word(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return str(m["content"]).split(" ", 1)[0]
    return ""


def _chunk(
    model: str,
    delta: dict[str, Any],
    finish: str | None,
    usage: dict[str, int] | None = None,
    cid: str = "chatcmpl-fault",
) -> bytes:
    obj: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else [],
    }
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _error(status: int, message: str, code: str | None, headers: dict[str, str] | None = None) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    error = {"message": message, "type": kind, "param": None, "code": code}
    return web.json_response({"error": error}, status=status, headers=headers)


def _prefilled(body: dict[str, Any]) -> str | None:
    """The partial answer a continuation sent as the last (assistant) message, if any."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "assistant" and isinstance(last.get("content"), str):
        return str(last["content"])
    return None


def _refusal(model: str, first: bool, state: FaultState, body: dict[str, Any]) -> web.Response | None:
    """The error this model answers with now, if any."""
    if model == "fb-429-ra" and first:
        return _error(429, "Rate limit reached; retry after 1 s.", "rate_limit_exceeded", {"Retry-After": "1"})
    if model == "fb-429" and first:
        return _error(429, "Rate limit reached.", "rate_limit_exceeded")
    if model == "fb-500-once" and first:
        return _error(500, "Internal error.", None)
    if model == "fb-503" or (model == "fb-flap" and time.monotonic() < state.down_until):
        return _error(503, "Service unavailable.", None)
    if model == "fb-context":
        return _error(400, "This model's maximum context length is 8 tokens.", "context_length_exceeded")
    if model == "fb-filter":
        return _error(400, "The response was filtered by the content policy.", "content_filter")
    if model == "fb-no-prefill" and _prefilled(body) is not None:
        return _error(400, "An assistant message prefill is not supported by this model.", None)
    return None


async def chat(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = orjson.loads(await request.read())
    state.requests.append(body)
    model = str(body.get("model"))
    first = not state.seen[model]
    state.seen[model].append(time.monotonic())
    word = _word(body)
    if word == "reject":
        return _error(400, "bad input", None)
    if word == "denied":
        return _error(401, DENIED, "invalid_api_key")
    if word == "slow":
        await asyncio.sleep(SLOW_S)
    refused = _refusal(model, first, state, body)
    if refused is not None:
        return refused
    if model == "fb-reset":
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(1)
        raise ConnectionResetError("reset on purpose")
    if model == "fb-hang":
        await asyncio.sleep(3600)
    prefix = _prefilled(body) or ""
    text = ANSWER[len(prefix) :] if ANSWER.startswith(prefix) else ANSWER
    if not body.get("stream"):
        if model == "fb-slow-first":
            await asyncio.sleep(SLOW_S)
        message = {"role": "assistant", "content": text}
        return web.json_response(
            {
                "id": "chatcmpl-fault",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": USAGE,
            }
        )
    return await _stream(request, model, text)


async def _stream(request: web.Request, model: str, text: str) -> web.StreamResponse:
    cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"  # one per answer: a spliced stream must not show two
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    if model == "fb-slow-first":
        await asyncio.sleep(SLOW_S)
    words = [w + " " for w in text.split(" ")]
    words[-1] = words[-1].rstrip(" ")
    half = len(words) // 2
    for i, w in enumerate(words):
        if i == half and model == "fb-cut":
            assert request.transport is not None
            request.transport.abort()
            return resp
        if i == half and model == "fb-stall":
            await asyncio.sleep(3600)
        if i == half and model == "fb-malformed":
            await resp.write(b"data: {not json\n\n")
        delta: dict[str, Any] = {"content": w} if i else {"role": "assistant", "content": w}
        await resp.write(_chunk(model, delta, None, cid=cid))
    await resp.write(_chunk(model, {}, "stop", cid=cid))
    await resp.write(_chunk(model, {}, None, USAGE, cid=cid))
    if model != "fb-no-done":
        await resp.write(b"data: [DONE]\n\n")
    return resp


async def health(request: web.Request) -> web.Response:
    if time.monotonic() < request.app[STATE].down_until:
        return web.Response(status=503, text="down")
    return web.Response(text="ok")


def fault_app() -> web.Application:
    app = web.Application()
    state = FaultState()
    app[STATE] = state
    app[REQUESTS] = state.requests
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    # The same upstream under a path per cluster (``/<anything>/v1``), for policies that give each cluster
    # its own URL.
    app.router.add_post("/{prefix}/v1/chat/completions", chat)
    app.router.add_get("/{prefix}/health", health)
    return app
