"""The OpenAI Chat Completions request: parse, bound, allowlist, validate, and derive the routing features.

In order, each step before anything more expensive:

1. JSON (orjson; the body size is already bounded by the server);
2. ``extra_body`` flattened into the top level (:func:`router.api.fields.flatten_extra_body`);
3. bounds from the policy's ``limits`` (messages, content parts, tools, JSON depth): a 3 MB array of
   100,000 messages is refused before any per-message work;
4. the allowlist (:mod:`router.api.fields`): connection and unknown fields are a 400 naming the field;
5. types (pydantic, strict: a proxy must not coerce ``"5"`` into ``5`` and then forward the original).

What passes is forwarded as sent (the proxy fills in only ``model`` and, if unset, the output cap).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from router.api.fields import check_fields, flatten_extra_body
from router.errors import InvalidRequest
from router.policy.schema_limits import RequestLimits
from router.types import RequestFeatures

Number = Annotated[float, Field(strict=True)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_Open):
    type: Literal["text"]
    text: StrictStr


class _Url(_Open):
    url: StrictStr = Field(min_length=1)


class ImageUrl(_Url):
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Open):
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudio(_Open):
    data: StrictStr
    format: StrictStr


class AudioPart(_Open):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(_Open):
    file_data: StrictStr | None = None
    file_id: StrictStr | None = None
    filename: StrictStr | None = None


class FilePart(_Open):
    type: Literal["file"]
    file: FileRef


class RefusalPart(_Open):
    type: Literal["refusal"]
    refusal: StrictStr


class AudioUrlPart(_Open):  # vLLM's multimodal extensions
    type: Literal["audio_url"]
    audio_url: _Url


class VideoUrlPart(_Open):
    type: Literal["video_url"]
    video_url: _Url


ContentPart = Annotated[
    TextPart | ImagePart | AudioPart | FilePart | RefusalPart | AudioUrlPart | VideoUrlPart,
    Field(discriminator="type"),
]
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal", "audio_url", "video_url"})


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[ContentPart] | None = None
    name: StrictStr | None = None
    tool_call_id: StrictStr | None = None
    tool_calls: list[dict[str, Any]] | None = None


class StreamOptions(_Open):
    include_usage: StrictBool = False


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]


class Tool(_Open):
    type: StrictStr


class ChatCompletionRequest(_Open):
    # Strict types: a proxy must not coerce ("5" -> 5) what it then forwards unchanged.
    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: StrictBool | None = None  # null means false, as OpenAI's schema has it
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = Field(None, ge=1)
    max_completion_tokens: StrictInt | None = Field(None, ge=1)
    n: StrictInt | None = Field(None, ge=1, le=128)
    temperature: Number | None = Field(None, ge=0, le=2)
    top_p: Number | None = Field(None, ge=0, le=1)
    frequency_penalty: Number | None = Field(None, ge=-2, le=2)
    presence_penalty: Number | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, Annotated[Number, Field(ge=-100, le=100)]] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = Field(None, ge=0, le=20)
    stop: StrictStr | list[StrictStr] | None = None
    seed: StrictInt | None = Field(None, ge=-(2**63), le=2**63 - 1)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    functions: list[dict[str, Any]] | None = None
    tool_choice: StrictStr | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    user: StrictStr | None = None
    store: StrictBool | None = None
    modalities: list[StrictStr] | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated request: the JSON object to forward (allowlisted, ``extra_body`` flattened) plus what
    the router reads. ``vllm_only``: the vLLM extras it carries (it may then go to vLLM clusters only).
    ``continues``: a stream rescue's continuation, whose last message is the partial answer (prefill)."""

    body: dict[str, Any]
    parsed: ChatCompletionRequest
    vllm_only: tuple[str, ...] = ()
    continues: bool = False

    @property
    def alias(self) -> str:
        return self.parsed.model

    @property
    def stream(self) -> bool:
        return bool(self.parsed.stream)

    @property
    def include_usage(self) -> bool:
        return bool(self.parsed.stream_options and self.parsed.stream_options.include_usage)

    @property
    def output_cap(self) -> int | None:
        """The client's own cap on output tokens per choice, if it set one."""
        p = self.parsed
        return p.max_completion_tokens or p.max_tokens

    @property
    def choices(self) -> int:
        return self.parsed.n or 1


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in PART_TYPES and i + 1 < len(loc) and loc[i + 1] == part:
            continue  # the tag of a content part, followed by the field of the same name
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_CONTAINERS = (dict, list)


def too_deep(obj: Any, limit: int) -> bool:
    """Whether JSON objects and arrays nest more than ``limit`` levels (the body itself is level 1).

    Level by level over containers only (JSON from orjson holds exact dicts and lists): about 8 us for a
    20-message request with tools."""
    level: list[Any] = [obj]
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            for value in node.values() if type(node) is dict else node:
                if type(value) in _CONTAINERS:
                    below.append(value)
        level = below
        depth += 1
    return False


def check_bounds(body: Mapping[str, Any], limits: RequestLimits) -> None:
    """The policy's ``limits``, checked before any per-field work."""
    messages = body.get("messages")
    if isinstance(messages, list):
        if len(messages) > limits.max_messages:
            raise InvalidRequest(
                f"'messages' has {len(messages)} entries; this proxy takes at most {limits.max_messages}.",
                param="messages",
            )
        for i, m in enumerate(messages):
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list) and len(content) > limits.max_content_parts:
                raise InvalidRequest(
                    f"'messages[{i}].content' has {len(content)} parts; this proxy takes at most "
                    f"{limits.max_content_parts}.",
                    param=f"messages[{i}].content",
                )
    for key in ("tools", "functions"):
        items = body.get(key)
        if isinstance(items, list) and len(items) > limits.max_tools:
            raise InvalidRequest(
                f"'{key}' has {len(items)} entries; this proxy takes at most {limits.max_tools}.", param=key
            )
    if too_deep(body, limits.max_json_depth):
        raise InvalidRequest(f"The request body nests JSON deeper than {limits.max_json_depth} levels.")


def parse_chat_request(raw: bytes, limits: RequestLimits | None = None) -> ChatRequest:
    """Parse and validate a request body; a bad one raises :class:`InvalidRequest` naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    body = flatten_extra_body(body)
    check_bounds(body, limits or RequestLimits())
    vllm_only = check_fields(body)
    try:
        parsed = ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        # The deepest problem is the most specific one (a `str | list` union reports both branches).
        err = max(exc.errors(), key=lambda e: len(e["loc"]))
        # Union members add their type names to the location; drop them for the caller.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in ("str", "list"))))
        param = _param(loc)
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise InvalidRequest(f"Invalid value for '{param}': {err['msg']}{more}", param=param) from None
    return ChatRequest(body=body, parsed=parsed, vllm_only=vllm_only)


def content_text(content: str | list[Any] | None) -> str:
    """The text of a message's content (its text parts, joined)."""
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
    chars = sum(len(content_text(m.content)) for m in req.messages)
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
        stream=bool(p.stream),
        last_user_message=content_text(last_user.content) if last_user else "",
    )
