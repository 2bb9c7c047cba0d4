from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from router.api.sse import DONE, EventSplitter, encode_event, error_event, event_data


@given(st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_any_chunking_yields_the_same_events(cuts: list[int]) -> None:
    stream = b"".join(encode_event({"i": i}) for i in range(5)) + b": comment\n\n" + DONE
    splitter, out, pos = EventSplitter(), [], 0
    for cut in cuts:
        out += splitter.feed(stream[pos : pos + cut])
        pos += cut
    out += splitter.feed(stream[pos:])
    assert b"".join(out) == stream
    assert splitter.pending == b""


def test_crlf_framing_and_multiline_data() -> None:
    events = EventSplitter().feed(b"data: a\r\ndata: b\r\n\r\n")
    assert events == [b"data: a\ndata: b\n\n"]
    assert event_data(events[0]) == b"a\nb"
    assert event_data(b": keep-alive\n\n") is None


def test_error_event_is_openai_shaped() -> None:
    data = event_data(error_event("boom"))
    assert data is not None
    assert orjson.loads(data) == {
        "error": {"message": "boom", "type": "server_error", "param": None, "code": "upstream_error"}
    }
