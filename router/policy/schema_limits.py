"""Policy schema, part 3: bounds a request must fit before the proxy does any work on it."""

from __future__ import annotations

from pydantic import Field

from router.policy.schema_base import _Strict


class RequestLimits(_Strict):
    """Most of each thing one request may carry, checked right after the JSON is read and before any
    validation, classification or upstream work; a request past one gets a 400 naming the field. The body
    size itself is bounded by `ROUTER_MAX_BODY_BYTES` (413)."""

    max_messages: int = Field(2048, ge=1, le=1_000_000, description="Most entries in `messages`.")
    max_content_parts: int = Field(
        64, ge=1, le=100_000, description="Most content parts in one message's `content` array."
    )
    max_tools: int = Field(128, ge=0, le=100_000, description="Most entries in `tools` (and in `functions`).")
    max_json_depth: int = Field(
        64,
        ge=8,
        le=200,
        description="Deepest nesting of JSON objects and arrays anywhere in the body (tool schemas included).",
    )
