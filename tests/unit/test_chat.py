from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.chat import estimate_prompt_tokens, features, parse_chat_request
from router.errors import InvalidRequest


def parse(obj: object) -> object:
    return parse_chat_request(orjson.dumps(obj))


def test_valid_request_keeps_the_original_body() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "seed": 1, "x_vendor": {"a": 1}}
    req = parse_chat_request(orjson.dumps(body))
    assert req.body == body
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
