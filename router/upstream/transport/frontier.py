"""Frontier APIs through litellm: provider translation for requests, responses and streams.

litellm is imported when the first frontier transport is built (it costs ≈ 2-3 s and ≈ 165 MB), so a
proxy whose policy has only self-hosted pools never pays for it. ``LITELLM_LOCAL_MODEL_COST_MAP`` is
forced on before the import: the proxy never fetches the price map from the network.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import orjson

from router.api.sse import DONE, encode_event
from router.errors import AttemptFailed, UpstreamRejected
from router.upstream.transport.background import BackgroundLoop
from router.upstream.transport.base import (
    Completion,
    StreamBroken,
    StreamState,
    UpstreamCall,
    completion_from_json,
    parse_retry_after,
    usage_from,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Fields the transport sets itself; everything else the client sent (allowlisted, router.api.fields) is
# forwarded to litellm as is.
OWN_FIELDS = frozenset({"model", "messages", "stream", "stream_options"})

# litellm provider names -> GenAI semantic-convention `gen_ai.provider.name` values.
PROVIDER_NAMES = {
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
}


def import_litellm() -> Any:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def provider_of(litellm: Any, model: str) -> str:
    try:
        provider = str(litellm.get_llm_provider(model)[1])
    except Exception:  # noqa: BLE001 - litellm raises many types for an unknown model string
        return "unknown"
    return PROVIDER_NAMES.get(provider, provider)


class FrontierTransport:
    """One litellm model. ``provider`` is the GenAI provider name derived from the model string.

    With a ``background`` loop (the proxy always passes one), litellm's request, response and chunk
    handling all run there, off the serving loop; without one (unit tests), inline."""

    def __init__(
        self, litellm: Any, model: str, api_base: str | None, background: BackgroundLoop | None = None
    ) -> None:
        self._litellm = litellm
        self.model = model
        self.api_base = api_base
        self.provider = provider_of(litellm, model)
        self._background = background

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await (self._background.run(coro) if self._background is not None else coro)

    def _kwargs(self, call: UpstreamCall) -> dict[str, Any]:
        kwargs = {k: v for k, v in call.body.items() if k not in OWN_FIELDS}
        kwargs.update(
            model=self.model,
            messages=call.body["messages"],
            stream=call.stream,
            timeout=call.total_s,
            num_retries=0,
            extra_headers=dict(call.headers),
            # litellm 1.106.2 routes any request with `tools` through its MCP bridge, which needs the
            # `mcp` package and only matters for its own proxy's MCP servers; plain tools skip it.
            _skip_mcp_handler=True,
        )
        if call.stream:
            kwargs["stream_options"] = {"include_usage": True}
        if call.api_key:
            kwargs["api_key"] = call.api_key
        if self.api_base:
            kwargs["api_base"] = self.api_base
        return kwargs

    def _failure(self, exc: BaseException) -> AttemptFailed | UpstreamRejected:
        # Debug only: under an outage this would be a line per request; ejections and cooldowns are
        # logged once each (router.pipeline.attempts), and every failure is in spans, metrics and the access log.
        log.debug("frontier %s failed: %s", self.model, exc)
        return classify_failure(exc)

    async def _complete(self, kwargs: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        resp = await self._litellm.acompletion(**kwargs)
        obj: dict[str, Any] = resp.model_dump()
        _clean_usage(obj)
        return orjson.dumps(obj), obj

    async def complete(self, call: UpstreamCall) -> Completion:
        try:
            async with asyncio.timeout(call.first_byte_s):
                payload, obj = await self._run(self._complete(self._kwargs(call)))
        except Exception as exc:
            raise self._failure(exc) from exc
        return completion_from_json(payload, obj)

    async def _open(self, kwargs: dict[str, Any]) -> tuple[AsyncIterator[Any], Any]:
        wrapper = await self._litellm.acompletion(**kwargs)
        iterator = wrapper.__aiter__()
        return iterator, await anext(iterator)

    async def stream(self, call: UpstreamCall) -> FrontierStream:
        try:
            async with asyncio.timeout(call.first_byte_s):
                iterator, first = await self._run(self._open(self._kwargs(call)))
        except StopAsyncIteration:
            raise AttemptFailed("frontier stream ended before any chunk", kind="protocol", retriable=True) from None
        except Exception as exc:
            raise self._failure(exc) from exc
        return FrontierStream(iterator, first, call.include_usage, self, call.timeouts.stream_idle_s)


# Where a failure came from the network: the exception chain holds one of these (or an OSError).
NETWORK_MODULES = frozenset({"httpx", "httpcore", "aiohttp", "anyio", "h11", "ssl"})
# Statuses with which a provider says the request itself is wrong (its words go to the client).
CLIENT_FAULT = frozenset({400, 413, 422})


def _from_network(exc: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError | TimeoutError | EOFError):
            return True
        if type(e).__module__.split(".", 1)[0] in NETWORK_MODULES:
            return True
        e = e.__cause__ or e.__context__
    return False


def classify_failure(exc: BaseException) -> AttemptFailed | UpstreamRejected:
    """Whose fault a litellm failure is. The request's own (the provider's 400/413/422, or litellm unable to
    translate it: an ``APIConnectionError`` with no network error behind it) is an
    :class:`UpstreamRejected` that moves no cooldown; anything else is the provider's (or the operator's:
    401/403/404) and counts against the cluster. Provider text reaches the client only in the first case."""
    if isinstance(exc, TimeoutError):
        return AttemptFailed("frontier API timed out", kind="timeout", retriable=True, timeout=True)
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    message = _one_line(str(getattr(exc, "message", "") or exc))
    if isinstance(status, int) and status in CLIENT_FAULT:
        # The provider's own words and code, without the library's prefixes ("litellm.BadRequestError:
        # OpenAIException - ...").
        body = getattr(exc, "body", None)
        error = body.get("error", body) if isinstance(body, dict) else {}
        code = error.get("code") if isinstance(error, dict) else None
        words = _PREFIX.sub("", message)
        payload: dict[str, Any] = {"error": {"message": words, "type": "invalid_request_error"}}
        if isinstance(code, str):
            payload["error"]["code"] = code
        if name == "ContextWindowExceededError":
            payload["error"]["code"] = "context_length_exceeded"
        return UpstreamRejected(status, payload, answered=False)
    if name == "APIConnectionError" and not _from_network(exc):
        payload = {
            "error": {
                "message": f"The request could not be translated for this provider: {message}",
                "type": "invalid_request_error",
            }
        }
        return UpstreamRejected(400, payload, answered=False)
    if (isinstance(status, int) and status == 408) or name == "Timeout":
        return AttemptFailed(message, kind="timeout", retriable=True, timeout=True)
    if name == "APIConnectionError":
        return AttemptFailed(f"frontier API unreachable: {message}", kind="connect", retriable=True)
    kind = f"http_{status}" if isinstance(status, int) else name
    # litellm keeps the provider's response headers (Retry-After among them) on the exception.
    headers = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    return AttemptFailed(
        f"frontier API error: {message}",
        kind=kind,
        retriable=True,
        retry_after_s=parse_retry_after(headers) if isinstance(status, int) else None,
    )


_PREFIX = re.compile(r"^(?:litellm\.\w+: )?(?:\w+Exception - )?")


def _one_line(message: str, limit: int = 300) -> str:
    """litellm messages can embed tracebacks and bug-report links: clients get the first line only."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _clean_usage(obj: dict[str, Any]) -> None:
    usage = obj.get("usage")
    if isinstance(usage, dict):
        usage.pop("cost", None)


class FrontierStream:
    def __init__(
        self, iterator: AsyncIterator[Any], first: Any, keep_usage: bool, owner: FrontierTransport, idle_s: float = 15.0
    ) -> None:
        self._iterator = iterator
        self._idle_s = idle_s
        self._first: Any = first
        self._keep_usage = keep_usage
        self._owner = owner
        self.state = StreamState()

    def _event(self, chunk: Any) -> bytes | None:
        obj: dict[str, Any] = chunk.model_dump(exclude_none=True)
        st = self.state
        if not st.response_model:
            st.response_model, st.response_id = str(obj.get("model") or ""), str(obj.get("id") or "")
        choices = obj.get("choices") or []
        for c in choices:
            if c.get("finish_reason"):
                st.finish_reasons.append(str(c["finish_reason"]))
        usage = usage_from(obj)
        if usage is None and st.usage is None:
            st.pieces.extend(
                str(c["delta"]["content"])
                for c in choices
                if isinstance(c.get("delta"), dict) and c["delta"].get("content")
            )
        if usage is not None:
            st.usage = usage
            st.pieces.clear()
            _clean_usage(obj)
            empty = all(not c.get("delta") and not c.get("finish_reason") for c in choices)
            if empty:
                if not self._keep_usage:
                    return None
                obj["choices"] = []  # the OpenAI shape of the final usage chunk
            elif not self._keep_usage:
                obj.pop("usage")
        st.content_chunks += 1
        return encode_event(obj)

    async def _next(self) -> bytes | None:
        """The next event to relay (b"" for a chunk that yields none), None at the end: on litellm's loop."""
        try:
            chunk = await anext(self._iterator)
        except StopAsyncIteration:
            return None
        return self._event(chunk) or b""

    async def events(self) -> AsyncIterator[bytes]:
        first, self._first = self._first, None
        if first is not None:
            out = self._event(first)
            if out is not None:
                yield out
        while True:
            try:
                async with asyncio.timeout(self._idle_s):
                    event = await self._owner._run(self._next())
            except TimeoutError as exc:
                raise StreamBroken("stall", f"provider stream stalled: no event for {self._idle_s:g} s") from exc
            except Exception as exc:
                failure = self._owner._failure(exc)
                raise StreamBroken(getattr(failure, "kind", "protocol"), failure.message) from exc
            if event is None:
                break
            if event:
                yield event
        yield DONE

    async def aclose(self) -> None:
        close = getattr(self._iterator, "aclose", None)
        if close is not None:
            await self._owner._run(close())
