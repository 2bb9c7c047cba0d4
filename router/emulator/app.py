"""The emulator's aiohttp application: chat completions (streamed or not), models, health, metrics."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from router.api.sse import DONE, encode_event
from router.emulator.config import EmulatorConfig

WORDS = ("this", "is", "an", "emulated", "answer", "from", "a", "local", "test", "upstream")


@dataclass
class EmulatorState:
    config: EmulatorConfig
    rng: random.Random
    slots: asyncio.Semaphore
    registry: CollectorRegistry
    running: int = 0
    waiting: int = 0
    kv_tokens: int = 0
    requests_total: int = 0
    last_request: dict[str, Any] = field(default_factory=dict)
    last_headers: dict[str, str] = field(default_factory=dict)
    ttft: Histogram | None = None
    prompt_tokens: Counter | None = None
    generation_tokens: Counter | None = None


STATE = web.AppKey("emulator_state", EmulatorState)


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return web.json_response(body, status=status, dumps=lambda o: orjson.dumps(o).decode(), headers=headers)


def _prompt_tokens(messages: list[Any]) -> int:
    n = 0
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            n += len(content) // 4 + 1
        elif isinstance(content, list):
            n += sum(len(str(p.get("text", ""))) // 4 + 1 for p in content if isinstance(p, dict))
        n += 4
    return n


async def chat(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    cfg = st.config
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "invalid JSON body", "BadRequestError")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        return _error(400, "'messages' is required", "BadRequestError")
    model = body.get("model")
    if model not in (cfg.model, *cfg.lora):
        return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
    st.requests_total += 1
    st.last_request = body
    st.last_headers = {k.lower(): v for k, v in request.headers.items()}
    if cfg.failure_rate and st.rng.random() < cfg.failure_rate:
        headers = {"Retry-After": f"{cfg.retry_after_s:g}"} if cfg.retry_after_s is not None else None
        return _error(cfg.failure_status, "injected failure", "InternalServerError", headers)
    prompt = _prompt_tokens(body["messages"])
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or cfg.completion_tokens
    n_tokens = max(1, min(int(limit), cfg.completion_tokens))
    st.waiting += 1
    try:
        await st.slots.acquire()
    finally:
        st.waiting -= 1
    st.running += 1
    st.kv_tokens += prompt + n_tokens
    try:
        if body.get("stream"):
            return await _stream(request, st, body, str(model), prompt, n_tokens)
        return await _complete(st, body, str(model), prompt, n_tokens)
    finally:
        st.running -= 1
        st.kv_tokens -= prompt + n_tokens
        st.slots.release()


def _words(n: int) -> list[str]:
    return [WORDS[i % len(WORDS)] for i in range(n)]


def _count(st: EmulatorState, model: str, prompt: int, completion: int) -> None:
    if st.prompt_tokens is not None and st.generation_tokens is not None:
        st.prompt_tokens.labels(model_name=model).inc(prompt)
        st.generation_tokens.labels(model_name=model).inc(completion)


async def _complete(st: EmulatorState, body: dict[str, Any], model: str, prompt: int, n: int) -> web.Response:
    cfg = st.config
    delay = cfg.latency_ms / 1000 + (n / cfg.tokens_per_second if cfg.tokens_per_second else 0)
    if delay:
        await asyncio.sleep(delay)
    if st.ttft is not None:
        st.ttft.labels(model_name=model).observe(delay)  # vLLM counts the whole prefill+decode here
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    payload = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": " ".join(_words(n))},
                "logprobs": None,
                "finish_reason": "length" if limit is not None and n >= int(limit) else "stop",
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n},
    }
    _count(st, model, prompt, n)
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


async def _stream(
    request: web.Request, st: EmulatorState, body: dict[str, Any], model: str, prompt: int, n: int
) -> web.StreamResponse:
    cfg = st.config
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    started = time.perf_counter()
    if cfg.ttft_ms:
        await asyncio.sleep(cfg.ttft_ms / 1000)
    if st.ttft is not None:
        st.ttft.labels(model_name=model).observe(time.perf_counter() - started)
    breaks = bool(cfg.break_stream_rate) and st.rng.random() < cfg.break_stream_rate
    gap = 1 / cfg.tokens_per_second if cfg.tokens_per_second else 0.0

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    await resp.write(encode_event(chunk({"role": "assistant", "content": ""}, None)))
    for i, word in enumerate(_words(n)):
        if breaks and i == n // 2:
            # A replica dying mid-stream: the connection closes without [DONE].
            assert request.transport is not None
            request.transport.close()
            return resp
        if gap:
            await asyncio.sleep(gap)
        await resp.write(encode_event(chunk({"content": word if i == 0 else " " + word}, None)))
    await resp.write(encode_event(chunk({}, "stop")))
    opts = body.get("stream_options") or {}
    if isinstance(opts, dict) and opts.get("include_usage") and cfg.send_usage:
        usage = {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n}
        final = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": []}
        await resp.write(encode_event({**final, "usage": usage}))
    await resp.write(DONE)
    _count(st, model, prompt, n)
    await resp.write_eof()
    return resp


async def models(request: web.Request) -> web.Response:
    cfg = request.app[STATE].config
    data = [{"id": cfg.model, "object": "model", "created": 0, "owned_by": "vllm", "root": cfg.model, "parent": None}]
    data += [
        {"id": a, "object": "model", "created": 0, "owned_by": "vllm", "root": a, "parent": cfg.model} for a in cfg.lora
    ]
    return web.json_response({"object": "list", "data": data})


async def health(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def metrics(request: web.Request) -> web.Response:
    out = generate_latest(request.app[STATE].registry)
    return web.Response(body=out, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def get_config(request: web.Request) -> web.Response:
    st = request.app[STATE]
    return web.json_response(
        {"config": st.config.model_dump(), "running": st.running, "waiting": st.waiting, "requests": st.requests_total}
    )


async def set_config(request: web.Request) -> web.Response:
    st = request.app[STATE]
    try:
        changes = orjson.loads(await request.read())
        st.config = st.config.model_copy(
            update=EmulatorConfig.model_validate({**st.config.model_dump(), **changes}).model_dump()
        )
    except (orjson.JSONDecodeError, ValidationError, TypeError) as exc:
        return _error(400, str(exc), "BadRequestError")
    return await get_config(request)


async def last_request(request: web.Request) -> web.Response:
    st = request.app[STATE]
    return web.json_response({"body": st.last_request, "headers": st.last_headers})


def _registry(st: EmulatorState) -> None:
    reg, model = st.registry, st.config.model
    labels = ["model_name"]
    Gauge("vllm:num_requests_running", "Requests running on the engine.", labels, registry=reg).labels(
        model_name=model
    ).set_function(lambda: st.running)
    Gauge("vllm:num_requests_waiting", "Requests waiting to be processed.", labels, registry=reg).labels(
        model_name=model
    ).set_function(lambda: st.waiting)
    for name in ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"):
        Gauge(name, "KV-cache usage; 1 means 100 percent usage.", labels, registry=reg).labels(
            model_name=model
        ).set_function(lambda: min(1.0, st.kv_tokens / st.config.kv_cache_tokens))
    st.ttft = Histogram(
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        labels,
        registry=reg,
        buckets=(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
    )
    st.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=reg)
    st.generation_tokens = Counter(
        "vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=reg
    )


def create_emulator(config: EmulatorConfig) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)  # vLLM takes large prompts; aiohttp stops at 1 MiB
    st = EmulatorState(
        config=config,
        rng=random.Random(config.seed),
        slots=asyncio.Semaphore(config.max_num_seqs),
        registry=CollectorRegistry(),
    )
    _registry(st)
    app[STATE] = st
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/emulator/config", get_config)
    app.router.add_post("/emulator/config", set_config)
    app.router.add_get("/emulator/last_request", last_request)
    return app
