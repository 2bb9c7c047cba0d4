"""The transport interface: send one attempt to one upstream, non-streamed or streamed.

A transport raises :class:`~router.errors.AttemptFailed` for a failure before the first byte (the
pipeline may try another target) and :class:`~router.errors.UpstreamRejected` when the upstream says
the request itself is wrong (passed to the client as is). Once a stream has yielded its first event,
a failure surfaces as :class:`StreamBroken` from the iterator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from router.policy.schema import Timeouts
from router.sse import event_data
from router.types import Usage


class StreamBroken(Exception):
    """The upstream stream failed after its first event reached the client."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    cluster: str
    endpoint: str
    upstream_model: str
    body: Mapping[str, Any]
    stream: bool
    include_usage: bool
    headers: Mapping[str, str]
    timeouts: Timeouts
    api_key: str | None = None


@dataclass(slots=True)
class Completion:
    """A non-streamed answer: the bytes for the client, plus what telemetry needs."""

    payload: bytes
    usage: Usage | None
    response_model: str
    finish_reasons: tuple[str, ...]
    response_id: str = ""


@dataclass(slots=True)
class StreamState:
    """What a stream has told so far (filled in while relaying)."""

    response_model: str = ""
    response_id: str = ""
    usage: Usage | None = None
    finish_reasons: list[str] = field(default_factory=list)
    content_chunks: int = 0


class EventStream(Protocol):
    """A stream whose first event has already arrived (so the attempt counts as started)."""

    state: StreamState

    def events(self) -> AsyncIterator[bytes]:
        """Every event for the client, the first included, ending with ``data: [DONE]``."""

    async def aclose(self) -> None:
        """Release the upstream connection (closing it if the stream was not read to the end)."""


class Transport(Protocol):
    provider: str

    async def complete(self, call: UpstreamCall) -> Completion: ...

    async def stream(self, call: UpstreamCall) -> EventStream: ...


def usage_from(obj: Any) -> Usage | None:
    if not isinstance(obj, dict):
        return None
    u = obj.get("usage")
    if not isinstance(u, dict):
        return None
    return Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))


def completion_from_json(payload: bytes, obj: dict[str, Any]) -> Completion:
    choices = obj.get("choices") or []
    reasons = tuple(str(c.get("finish_reason")) for c in choices if isinstance(c, dict) and c.get("finish_reason"))
    return Completion(payload, usage_from(obj), str(obj.get("model") or ""), reasons, str(obj.get("id") or ""))


def observe_event(state: StreamState, event: bytes, keep_usage: bool) -> bytes | None:
    """Read what telemetry needs from one upstream event; return the event to relay (or None to drop it).

    Cheap on the common path: only events that carry usage or a finish reason are parsed.
    """
    data = event_data(event)
    if data is None or data == b"[DONE]":
        return event
    if (
        not state.response_model
        or b'"usage":{' in data
        or b'"usage": {' in data
        or b'"finish_reason":"' in data
        or b'"finish_reason": "' in data
    ):
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return event
        if not isinstance(obj, dict):
            return event
        if not state.response_model:
            state.response_model = str(obj.get("model") or "")
            state.response_id = str(obj.get("id") or "")
        for c in obj.get("choices") or []:
            if isinstance(c, dict) and c.get("finish_reason"):
                state.finish_reasons.append(str(c["finish_reason"]))
        usage = usage_from(obj)
        if usage is not None:
            state.usage = usage
            if not keep_usage:
                return None if not obj.get("choices") else event
    state.content_chunks += 1
    return event
