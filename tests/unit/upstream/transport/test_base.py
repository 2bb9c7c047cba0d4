import orjson

from router.api.sse import DONE, encode_event
from router.types import Usage
from router.upstream.transport.base import StreamState, completion_from_json, observe_event, usage_from

CHUNK = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
FINISH = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
USAGE = {"id": "c1", "model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


def test_observe_reads_model_finish_and_usage() -> None:
    st = StreamState()
    for obj in (CHUNK, FINISH):
        assert observe_event(st, encode_event(obj), keep_usage=True) == encode_event(obj)
    assert observe_event(st, encode_event(USAGE), keep_usage=True) == encode_event(USAGE)
    assert observe_event(st, DONE, keep_usage=True) == DONE
    assert (st.response_model, st.response_id, st.finish_reasons, st.usage) == ("m", "c1", ["stop"], Usage(3, 2))


def test_usage_only_event_is_dropped_when_the_client_did_not_ask() -> None:
    st = StreamState()
    assert observe_event(st, encode_event(USAGE), keep_usage=False) is None
    assert st.usage == Usage(3, 2)


def test_completion_from_json() -> None:
    obj = {**FINISH, "usage": {"prompt_tokens": 1, "completion_tokens": 4}}
    c = completion_from_json(orjson.dumps(obj), obj)
    assert (c.response_model, c.finish_reasons, c.usage) == ("m", ("stop",), Usage(1, 4))
    assert usage_from({"usage": None}) is None


def test_retry_after_in_every_form() -> None:
    from router.upstream.transport.base import parse_retry_after

    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 02 Dec 2026 00:00:10 GMT"}, now=1796169600.0) == 10.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after-ms": "x", "retry-after": "2"}) == 2.0
    assert parse_retry_after({}) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after({"retry-after": "-3"}) == 0.0
