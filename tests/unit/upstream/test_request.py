from __future__ import annotations

import pytest

from router.api.chat import parse_chat_request
from router.errors import InvalidRequest
from router.upstream.request import affinity_key, deadline_of


def test_deadline_header() -> None:
    assert deadline_of({}, 100.0) is None
    assert deadline_of({"x-router-timeout-ms": "250"}, 100.0) == 100.25
    for bad in ("0", "-5", "soon", "1.5", "99999999999"):
        with pytest.raises(InvalidRequest) as err:
            deadline_of({"x-router-timeout-ms": bad}, 0.0)
        assert err.value.param == "x-router-timeout-ms"


def chat(*turns: tuple[str, str]) -> bytes:
    import orjson

    return orjson.dumps({"model": "m", "messages": [{"role": r, "content": c} for r, c in turns]})


def test_affinity_keys() -> None:
    first = parse_chat_request(chat(("system", "You are terse."), ("user", "hi")))
    later = parse_chat_request(
        chat(("system", "You are terse."), ("user", "hi"), ("assistant", "yo"), ("user", "more"))
    )
    other = parse_chat_request(chat(("system", "You are terse."), ("user", "hello")))
    assert affinity_key("prefix", first, {}) == affinity_key("prefix", later, {})  # one conversation
    assert affinity_key("prefix", first, {}) != affinity_key("prefix", other, {})
    assert affinity_key("session", first, {}) is None  # session affinity needs the header
    assert affinity_key("session", first, {"x-session-id": "s1"}) == affinity_key(
        "prefix", other, {"x-session-id": "s1"}
    )
