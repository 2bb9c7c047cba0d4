"""Server-sent events as OpenAI streams them: framing, the terminal event, and error events."""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


class EventSplitter:
    """Cuts a byte stream into complete SSE events (each returned with its blank-line terminator)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        events = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            events.append(buf[start : end + 2])
            start = end + 2
        self._buf = buf[start:]
        return events

    @property
    def pending(self) -> bytes:
        return self._buf


def event_data(event: bytes) -> bytes | None:
    """The payload of a ``data:`` event (multi-line data joined), or None for comments and other fields."""
    lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def encode_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_event(message: str, error_type: str = "server_error", code: str | None = "upstream_error") -> bytes:
    """The event an OpenAI SDK turns into an APIError when a stream breaks after its first byte."""
    return encode_event({"error": {"message": message, "type": error_type, "param": None, "code": code}})
