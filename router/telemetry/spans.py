"""Span attributes of upstream attempts, from request and response bodies (GenAI conventions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from opentelemetry import trace

from router.telemetry import names as n
from router.types import Usage


def request_attributes(span: trace.Span, body: Mapping[str, Any], capture: bool) -> None:
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int):
        span.set_attribute(n.GEN_AI_REQUEST_MAX_TOKENS, max_tokens)
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        span.set_attribute(n.GEN_AI_REQUEST_TEMPERATURE, float(temperature))
    if capture:
        span.set_attribute(n.GEN_AI_INPUT_MESSAGES, orjson.dumps(body.get("messages")).decode())


def response_attributes(
    span: trace.Span, model: str, response_id: str, reasons: tuple[str, ...], usage: Usage | None
) -> None:
    if model:
        span.set_attribute(n.GEN_AI_RESPONSE_MODEL, model)
    if response_id:
        span.set_attribute(n.GEN_AI_RESPONSE_ID, response_id)
    if reasons:
        span.set_attribute(n.GEN_AI_RESPONSE_FINISH_REASONS, list(reasons))
    if usage is not None:
        span.set_attribute(n.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
        span.set_attribute(n.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)


def choices_json(payload: bytes) -> str:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    return orjson.dumps([c.get("message") for c in obj.get("choices") or [] if isinstance(c, dict)]).decode()
