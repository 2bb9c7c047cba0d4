"""A fault-injecting OpenAI-compatible upstream of the tests' own (not the emulator's friendly failures).

What it does is chosen by the last user message's first word:

    reject   400 with an OpenAI error (the request is "bad")
    denied   401 with a provider's words about the operator's key
    slow     answers after ``SLOW_S`` seconds
    anything else: a normal answer, streamed when asked

``requests`` counts the chat requests it received.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

SLOW_S = 2.0
DENIED = "Incorrect API key provided: sk-OPERA****6789. You can find your API key at https://example.invalid."
REQUESTS = web.AppKey("requests", list)


def _word(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return str(m["content"]).split(" ", 1)[0]
    return ""


def _chunk(model: str, delta: dict[str, Any], finish: str | None, usage: dict[str, int] | None = None) -> bytes:
    obj: dict[str, Any] = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else [],
    }
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + orjson.dumps(obj) + b"\n\n"


async def chat(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    request.app[REQUESTS].append(body)
    word = _word(body)
    model = str(body.get("model"))
    if word == "reject":
        error = {"message": "bad input", "type": "invalid_request_error", "param": None, "code": None}
        return web.json_response({"error": error}, status=400)
    if word == "denied":
        error = {"message": DENIED, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
        return web.json_response({"error": error}, status=401)
    if word == "slow":
        await asyncio.sleep(SLOW_S)
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    if not body.get("stream"):
        message = {"role": "assistant", "content": "all good"}
        return web.json_response(
            {
                "id": "chatcmpl-fault",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": usage,
            }
        )
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_chunk(model, {"role": "assistant", "content": "all "}, None))
    await resp.write(_chunk(model, {"content": "good"}, "stop"))
    await resp.write(_chunk(model, {}, None, usage))
    await resp.write(b"data: [DONE]\n\n")
    return resp


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def fault_app() -> web.Application:
    app = web.Application()
    app[REQUESTS] = []
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    return app
