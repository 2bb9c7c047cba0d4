"""The OpenAI Chat Completions request: parse, validate, and derive the routing features.

The proxy validates only what it interprets (``model``, ``messages``, ``stream``, ``stream_options``,
token limits); every other field (``tools``, ``response_format``, ``seed``, sampling parameters,
vendor extras) is kept as sent and forwarded unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from router.errors import InvalidRequest
from router.types import RequestFeatures


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    type: StrictStr = Field(min_length=1)


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[ContentPart] | None = None


class StreamOptions(_Open):
    include_usage: StrictBool = False


class ChatCompletionRequest(_Open):
    # Strict types: a proxy must not coerce ("5" -> 5) what it then forwards unchanged.
    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = Field(None, ge=1)
    max_completion_tokens: StrictInt | None = Field(None, ge=1)
    n: StrictInt | None = Field(None, ge=1, le=128)
    tools: list[dict[str, Any]] | None = None
    functions: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated request: the original JSON object (forwarded as is) plus what the router reads."""

    body: dict[str, Any]
    parsed: ChatCompletionRequest

    @property
    def alias(self) -> str:
        return self.parsed.model

    @property
    def stream(self) -> bool:
        return self.parsed.stream

    @property
    def include_usage(self) -> bool:
        return bool(self.parsed.stream_options and self.parsed.stream_options.include_usage)


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Parse and validate a request body; a bad one raises :class:`InvalidRequest` naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        parsed = ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        # Union members add their type names to the location; drop them for the caller.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in ("str", "list"))))
        param = _param(loc)
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise InvalidRequest(f"Invalid value for '{param}': {err['msg']}{more}", param=param) from None
    return ChatRequest(body=body, parsed=parsed)


def _text(content: str | list[ContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        text = getattr(part, "text", None)
        if isinstance(text, str):
            parts.append(text)
    return "\n".join(parts)


IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})


def estimate_prompt_tokens(req: ChatCompletionRequest) -> int:
    """A fast estimate (≈ 4 characters a token, plus the per-message overhead of chat templates)."""
    chars = sum(len(_text(m.content)) for m in req.messages)
    return chars // 4 + 4 * len(req.messages)


def features(req: ChatRequest, headers: Mapping[str, str], tenant: str | None) -> RequestFeatures:
    p = req.parsed
    has_images = any(
        isinstance(m.content, list) and any(part.type in IMAGE_PART_TYPES for part in m.content) for m in p.messages
    )
    last_user = next((m for m in reversed(p.messages) if m.role == "user"), None)
    return RequestFeatures(
        alias=p.model,
        tenant=tenant,
        headers=headers,
        prompt_tokens=estimate_prompt_tokens(p),
        has_tools=bool(p.tools) or bool(p.functions),
        has_images=has_images,
        stream=p.stream,
        last_user_message=_text(last_user.content) if last_user else "",
    )
