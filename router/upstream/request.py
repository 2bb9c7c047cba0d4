"""What a request says about how it wants to be served (pure): its deadline and its affinity key."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import orjson

from router.api.chat import ChatRequest
from router.errors import InvalidRequest

DEADLINE_HEADER = "x-router-timeout-ms"
SESSION_HEADER = "x-session-id"
MAX_DEADLINE_MS = 3_600_000


def deadline_of(headers: Mapping[str, str], now: float) -> float | None:
    """The caller's own deadline (``x-router-timeout-ms``, relative), as a monotonic time."""
    raw = headers.get(DEADLINE_HEADER)
    if raw is None:
        return None
    try:
        ms = int(raw.strip())
    except ValueError:
        ms = 0
    if not 1 <= ms <= MAX_DEADLINE_MS:
        raise InvalidRequest(
            f"Header {DEADLINE_HEADER} must be a whole number of milliseconds from 1 to {MAX_DEADLINE_MS}, "
            f"not {raw!r}.",
            param=DEADLINE_HEADER,
        )
    return now + ms / 1000


def affinity_key(mode: str, chat: ChatRequest, headers: Mapping[str, str]) -> bytes | None:
    """What related requests share: the session header, or (``prefix``) the conversation's opening."""
    session = headers.get(SESSION_HEADER)
    if session:
        return b"s:" + session.encode()
    if mode != "prefix":
        return None
    head = []
    for m in chat.parsed.messages:  # up to and including the first user turn: stable across later turns
        head.append(m.model_dump(include={"role", "content"}))
        if m.role == "user":
            break
    return b"p:" + hashlib.blake2b(orjson.dumps(head), digest_size=16).digest()
