"""What the trust-boundary checks cost per request (issue #12: the allowlist must stay under 0.05 ms).

    .venv/bin/python -m tests.perf.bench_request_checks

Prints, for a one-message request (the bench rig's) and a 20-message conversation with tools, the time
of each step of ``router.api.chat.parse_chat_request``: the allowlist (``extra_body`` flattening and the
field check), the bounds (counts and JSON depth), the typed validation, and the whole parse.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

import orjson

from router.api.chat import ChatCompletionRequest, check_bounds, parse_chat_request
from router.api.fields import check_fields, flatten_extra_body
from router.policy.schema_limits import RequestLimits

SMALL: dict[str, Any] = {"model": "bench-model", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a customer up.",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}, "deep": {"type": "object"}}},
    },
}
CONVERSATION: dict[str, Any] = {
    "model": "auto",
    "messages": [{"role": "system", "content": "You are terse."}]
    + [{"role": ("user", "assistant")[i % 2], "content": "some words " * 20} for i in range(19)],
    "tools": [TOOL] * 4,
    "temperature": 0.2,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def per_call_us(fn: Callable[[], object], number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main() -> None:
    limits = RequestLimits()
    for name, body in (("1 message", SMALL), ("20 messages + 4 tools", CONVERSATION)):
        raw = orjson.dumps(body)
        loaded = orjson.loads(raw)
        n = 20000

        def allowlist(b: dict[str, Any] = loaded) -> object:
            return check_fields(flatten_extra_body(b))

        def bounded(b: dict[str, Any] = loaded) -> object:
            check_bounds(b, limits)
            return None

        def typed_only(b: dict[str, Any] = loaded) -> object:
            return ChatCompletionRequest.model_validate(b)

        def parse(r: bytes = raw) -> object:
            return parse_chat_request(r, limits)

        allow = per_call_us(allowlist, n)
        bounds = per_call_us(bounded, n)
        typed = per_call_us(typed_only, n // 4)
        whole = per_call_us(parse, n // 4)
        print(
            f"{name:<22} allowlist {allow:6.2f} us  bounds {bounds:6.2f} us  typed validation {typed:6.2f} us  "
            f"whole parse {whole:6.2f} us"
        )


if __name__ == "__main__":
    main()
