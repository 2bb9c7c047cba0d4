"""The transport interface: send one attempt to one upstream, non-streamed or streamed.

A transport raises :class:`~router.errors.AttemptFailed` for a failure before the first byte (the
pipeline may try another target) and :class:`~router.errors.UpstreamRejected` when the upstream says
the request itself is wrong (passed to the client as is). Once a stream has yielded its first event,
a failure surfaces as :class:`StreamBroken` from the iterator.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from router.api.sse import event_data
from router.policy.schema import Timeouts
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
    # Seconds left before the request's deadline, when it has one: every time limit of the attempt is
    # cut to it (the deadline propagates upstream).
    remaining_s: float | None = None
    # The last message is a partial answer the model is to continue (a stream rescue), not a new turn.
    prefill: bool = False

    @property
    def first_byte_limit(self) -> float:
        """The cluster's limit on the first byte: a stream's own first-token limit when it has one."""
        t = self.timeouts
        return t.first_token_s if self.stream and t.first_token_s is not None else t.first_byte_s

    @property
    def first_byte_s(self) -> float:
        t = self.first_byte_limit
        return t if self.remaining_s is None else max(0.001, min(t, self.remaining_s))

    @property
    def total_s(self) -> float:
        t = self.timeouts.total_s
        return t if self.remaining_s is None else max(0.001, min(t, self.remaining_s))

    @property
    def deadline_bound(self) -> bool:
        """The caller's own deadline, not the cluster's limits, set how long this attempt could wait for
        its first byte: a timeout then is the caller's, and says nothing about the endpoint."""
        return self.remaining_s is not None and self.remaining_s < self.first_byte_limit

    @property
    def deadline_bound_total(self) -> bool:
        """The same for the whole attempt (a stream cut by the caller's deadline)."""
        return self.remaining_s is not None and self.remaining_s < self.timeouts.total_s


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (delta-seconds or an HTTP date), else None."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass  # not a number: fall back to Retry-After
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass  # not delta-seconds: an HTTP date, below
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


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
    # The data of content events, kept only so that a stream whose upstream sends no usage (llama.cpp's
    # server, some gateways) can be costed by counting its tokens at the end; dropped once usage arrives.
    raw: list[bytes] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)  # the same, as text, where the content is at hand

    def text(self) -> str:
        """The streamed content (parsed from ``raw``)."""
        parts: list[str] = list(self.pieces)
        for data in self.raw:
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            for c in obj.get("choices") or [] if isinstance(obj, dict) else []:
                delta = c.get("delta") if isinstance(c, dict) else None
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    parts.append(delta["content"])
        return "".join(parts)


def finished(state: StreamState) -> bool:
    """Whether a stream has told all it had to: a finish reason and the final usage chunk. An upstream that
    then closes without ``[DONE]`` sent a complete answer (some servers and gateways do), not a broken one."""
    return bool(state.finish_reasons) and state.usage is not None


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

    Cheap on the common path: a token's chunk that looks whole (``{`` ... ``}``) is relayed unparsed; only
    events that carry usage or a finish reason, the first one, and any that does not look whole are parsed.
    One that is not a JSON object is a broken stream, never relayed: the client's SDK would fail on it, and
    its content would be lost.
    """
    data = event_data(event)
    if data is None or data == b"[DONE]":
        return event
    if (
        data[:1] != b"{"
        or data[-1:] != b"}"
        or not state.response_model
        or b'"usage":{' in data
        or b'"usage": {' in data
        or b'"finish_reason":"' in data
        or b'"finish_reason": "' in data
    ) and _read(state, data, keep_usage):
        return None
    state.content_chunks += 1
    if state.usage is None:
        state.raw.append(data)
    return event


def _read(state: StreamState, data: bytes, keep_usage: bool) -> bool:
    """Parse one event into ``state``; True if it is the final usage chunk, to be dropped (the client did
    not ask for usage). An event that is not a JSON object is a broken stream."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise StreamBroken("protocol", "upstream sent an event that is not JSON") from None
    if not isinstance(obj, dict):
        raise StreamBroken("protocol", "upstream sent an event that is not a JSON object")
    if not state.response_model:
        state.response_model = str(obj.get("model") or "")
        state.response_id = str(obj.get("id") or "")
    for c in obj.get("choices") or ():
        if isinstance(c, dict) and c.get("finish_reason"):
            state.finish_reasons.append(str(c["finish_reason"]))
    usage = usage_from(obj)
    if usage is not None:
        state.usage = usage
        state.raw.clear()
    return usage is not None and not keep_usage and not obj.get("choices")
