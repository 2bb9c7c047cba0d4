"""Direct transport to vLLM (or any OpenAI-compatible server) over one shared aiohttp session.

Requests are forwarded as sent, with only ``model`` replaced (the served model or a LoRA adapter) and
``stream_options.include_usage`` forced on for streams so every stream can be accounted; the usage
event is dropped again if the client did not ask for it. Streams are relayed event by event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from router.api.sse import DONE, EventSplitter
from router.errors import AttemptFailed, UpstreamRejected
from router.policy.schema import Timeouts
from router.telemetry.names import PROVIDER_VLLM
from router.upstream.transport.base import (
    Completion,
    StreamBroken,
    StreamState,
    UpstreamCall,
    completion_from_json,
    finished,
    observe_event,
    parse_retry_after,
)

# 4xx statuses that mean "this request is wrong" (pass through); any other 4xx from an upstream (401,
# 403, 404 for a model it does not serve, 408, 429) is the deployment's problem: try elsewhere.
CLIENT_FAULT = frozenset({400, 413, 422})


def _client_timeout(t: Timeouts, first_byte_s: float, total_s: float, stream: bool) -> aiohttp.ClientTimeout:
    # The first byte, the gap between a stream's events (idle_s, in VllmStream) and the total are bounded
    # on their own; sock_read is only a backstop for a read that hangs in between.
    sock_read = max(first_byte_s, t.stream_idle_s) if stream else None
    return aiohttp.ClientTimeout(total=total_s, sock_connect=t.connect_s, sock_read=sock_read)


def _failure(exc: BaseException) -> AttemptFailed:
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return AttemptFailed("upstream timed out", kind="timeout", retriable=True, timeout=True)
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError | ConnectionError):
        return AttemptFailed(f"cannot reach upstream: {exc}", kind="connect", retriable=True)
    return AttemptFailed(f"upstream protocol error: {type(exc).__name__}: {exc}", kind="protocol", retriable=True)


async def _raise_for_status(resp: aiohttp.ClientResponse) -> None:
    if resp.status == 200:
        return
    raw = await resp.read()
    try:
        payload: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        payload = {}
    if resp.status in CLIENT_FAULT:
        raise UpstreamRejected(resp.status, payload if isinstance(payload, dict) else {})
    raise AttemptFailed(
        f"upstream answered HTTP {resp.status}",
        kind=f"http_{resp.status}",
        retriable=True,
        retry_after_s=parse_retry_after(resp.headers),
    )


class VllmTransport:
    provider = PROVIDER_VLLM

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._timeouts: dict[tuple[Timeouts, bool], aiohttp.ClientTimeout] = {}

    def _prepare(self, call: UpstreamCall) -> tuple[str, bytes, dict[str, str], aiohttp.ClientTimeout]:
        body = dict(call.body)
        body["model"] = call.upstream_model
        if call.prefill:  # vLLM's way to continue the last (assistant) message instead of starting a new one
            body["continue_final_message"], body["add_generation_prompt"] = True, False
        if call.stream:
            body["stream"] = True
            opts = body.get("stream_options")
            body["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
        headers = {"Content-Type": "application/json", **call.headers}
        if call.api_key:
            headers["Authorization"] = f"Bearer {call.api_key}"
        t = call.timeouts
        if call.remaining_s is not None:  # cut to the request's deadline: built per call, not cached
            timeout = _client_timeout(t, call.first_byte_s, call.total_s, call.stream)
        else:
            key = (t, call.stream)
            cached = self._timeouts.get(key)
            if cached is None:
                cached = self._timeouts[key] = _client_timeout(t, call.first_byte_limit, t.total_s, call.stream)
            timeout = cached
        return call.endpoint + "/chat/completions", orjson.dumps(body), headers, timeout

    async def complete(self, call: UpstreamCall) -> Completion:
        url, data, headers, timeout = self._prepare(call)
        try:
            async with asyncio.timeout(call.first_byte_s):
                async with self._session.post(url, data=data, headers=headers, timeout=timeout) as resp:
                    await _raise_for_status(resp)
                    raw = await resp.read()
        except (AttemptFailed, UpstreamRejected):
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _failure(exc) from exc
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise AttemptFailed("upstream sent invalid JSON", kind="protocol", retriable=True) from None
        if not isinstance(obj, dict):
            raise AttemptFailed("upstream sent a non-object JSON body", kind="protocol", retriable=True)
        return completion_from_json(raw, obj)

    async def stream(self, call: UpstreamCall) -> VllmStream:
        url, data, headers, timeout = self._prepare(call)
        resp: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(call.first_byte_s):
                resp = await self._session.post(url, data=data, headers=headers, timeout=timeout)
                await _raise_for_status(resp)
                splitter = EventSplitter()
                first: list[bytes] = []
                while not first:
                    chunk = await resp.content.readany()
                    if not chunk:
                        raise AttemptFailed(
                            "upstream closed the stream before any event", kind="protocol", retriable=True
                        )
                    first = splitter.feed(chunk)
        except BaseException as exc:
            if resp is not None:
                resp.close()
            if isinstance(exc, AttemptFailed | UpstreamRejected):
                raise
            if isinstance(exc, TimeoutError | aiohttp.ClientError | OSError):
                raise _failure(exc) from exc
            raise
        return VllmStream(resp, splitter, first, call.include_usage, call.timeouts.stream_idle_s)


class VllmStream:
    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        splitter: EventSplitter,
        first: list[bytes],
        keep_usage: bool,
        idle_s: float = 15.0,
    ) -> None:
        self._resp = resp
        self._idle_s = idle_s
        self._splitter = splitter
        self._first = first
        self._keep_usage = keep_usage
        self._done = False
        self.state = StreamState()

    async def events(self) -> AsyncIterator[bytes]:
        state, keep = self.state, self._keep_usage
        pending = self._first
        self._first = []
        while True:
            for event in pending:
                out = observe_event(state, event, keep)
                if out is not None:
                    if out == DONE:
                        self._done = True
                    yield out
            if self._done:
                return
            try:
                async with asyncio.timeout(self._idle_s):
                    chunk = await self._resp.content.readany()
            except TimeoutError as exc:
                raise StreamBroken("stall", f"upstream stream stalled: no event for {self._idle_s:g} s") from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise StreamBroken(_failure(exc).kind, f"upstream stream broke: {exc}") from exc
            if not chunk:
                if finished(state):  # the whole answer, only the terminator missing: finish it
                    self._done = True
                    yield DONE
                    return
                raise StreamBroken("protocol", "upstream closed the stream before [DONE]")
            pending = self._splitter.feed(chunk)

    async def aclose(self) -> None:
        if self._done:
            self._resp.release()
        else:
            self._resp.close()
