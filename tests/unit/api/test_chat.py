from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.api.chat import ChatRequest, estimate_prompt_tokens, features, parse_chat_request, too_deep
from router.errors import InvalidRequest
from router.policy.schema_limits import RequestLimits


def parse(obj: object) -> object:
    return parse_chat_request(orjson.dumps(obj))


def test_valid_request_keeps_the_original_body() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "seed": 1, "top_k": 5}
    req = parse_chat_request(orjson.dumps(body))
    assert req.body == body
    assert req.vllm_only == ("top_k",)
    assert req.alias == "auto"
    assert not req.stream
    assert not req.include_usage


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "", "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "a", "messages": []}, "messages"),
        ({"model": "a", "messages": "hello"}, "messages"),
        ({"model": "a", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": "a", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "a", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"model": "a", "messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(body)
    assert info.value.param == param
    assert info.value.status == 400


@pytest.mark.parametrize("raw", [b"", b"{", b"null", b"[]", b'"text"', b"\xff\xfe"])
def test_non_json_or_non_object_is_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_chat_request(raw)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    # Either a valid request or a 400: never another exception type.
    with contextlib.suppress(InvalidRequest):
        parse_chat_request(raw)


def test_features() -> None:
    req = parse_chat_request(
        orjson.dumps(
            {
                "model": "auto",
                "stream": True,
                "stream_options": {"include_usage": True},
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "messages": [
                    {"role": "system", "content": "s" * 40},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "look"},
                            {"type": "image_url", "image_url": {"url": "data:"}},
                        ],
                    },
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "and now?"},
                ],
            }
        )
    )
    f = features(req, {"x-a": "1"}, "acme")
    assert (f.alias, f.tenant, f.stream, f.has_tools, f.has_images) == ("auto", "acme", True, True, True)
    assert f.last_user_message == "and now?"
    assert f.prompt_tokens == estimate_prompt_tokens(req.parsed) == (40 + 4 + 2 + 8) // 4 + 16
    assert req.include_usage


def _msgs(n: int) -> list[dict[str, object]]:
    return [{"role": "user", "content": "x"}] * n


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"model": "a", "messages": _msgs(11)}, "messages", "at most 10"),
        ({"model": "a", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}] * 4}]},
         "messages[0].content", "at most 3"),
        ({"model": "a", "messages": _msgs(1), "tools": [{"type": "function"}] * 3}, "tools", "at most 2"),
        ({"model": "a", "messages": _msgs(1), "functions": [{}] * 3}, "functions", "at most 2"),
    ],
)  # fmt: skip
def test_bounds_come_first_and_name_the_field(body: dict[str, object], param: str, words: str) -> None:
    limits = RequestLimits(max_messages=10, max_content_parts=3, max_tools=2, max_json_depth=8)
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(orjson.dumps(body), limits)
    assert info.value.param == param
    assert words in info.value.message


def test_deep_json_is_refused_before_validation() -> None:
    deep: object = "leaf"
    for _ in range(70):
        deep = {"d": deep}
    body = {"model": "a", "messages": _msgs(1), "response_format": {"type": "json_schema", "json_schema": deep}}
    with pytest.raises(InvalidRequest) as info:
        parse(body)
    assert "deeper than 64 levels" in info.value.message
    # orjson's own limit (1,024) and its encoder's (255) are never reached by a body that passes.
    assert too_deep(orjson.loads(b"[" * 65 + b"]" * 65), 64)
    assert not too_deep(orjson.loads(b"[" * 64 + b"]" * 64), 64)


def test_big_bodies_are_checked_cheaply() -> None:
    # 100,000 messages: refused by the count, before any per-message work.
    with pytest.raises(InvalidRequest) as info:
        parse({"model": "a", "messages": _msgs(100_000)})
    assert info.value.param == "messages"


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "image_url"}, "messages[0].content[0].image_url"),
        ({"type": "image_url", "image_url": {}}, "messages[0].content[0].image_url.url"),
        ({"type": "image_url", "image_url": {"url": ""}}, "messages[0].content[0].image_url.url"),
        ({"type": "text"}, "messages[0].content[0].text"),
        ({"type": "text", "text": 5}, "messages[0].content[0].text"),
        ({"type": "input_audio", "input_audio": {"data": "x"}}, "messages[0].content[0].input_audio.format"),
        ({"type": "bogus"}, "messages[0].content[0]"),
        ({"text": "no type"}, "messages[0].content[0]"),
    ],
)
def test_content_parts_are_typed(part: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse({"model": "a", "messages": [{"role": "user", "content": [part]}]})
    assert info.value.param == param


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": "1"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": True}, "top_p"),
        ({"stop": 5}, "stop"),
        ({"logit_bias": {"1": 500}}, "logit_bias.1"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"tools": [{"function": {}}]}, "tools[0].type"),
        ({"n": 129}, "n"),
    ],
)
def test_sampling_fields_are_typed(extra: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse({"model": "a", "messages": _msgs(1), **extra})
    assert info.value.param == param


def test_output_cap_and_choices() -> None:
    def req(**extra: object) -> ChatRequest:
        return parse_chat_request(orjson.dumps({"model": "a", "messages": _msgs(1), **extra}))

    assert req().output_cap is None
    assert req().choices == 1
    assert req(max_tokens=7).output_cap == 7
    assert req(max_completion_tokens=9, max_tokens=7).output_cap == 9
    # What extra_body carries counts like the top level (it is what reaches the upstream).
    flat = req(max_tokens=100, extra_body={"n": 20})
    assert (flat.output_cap, flat.choices, "extra_body" in flat.body) == (100, 20, False)
