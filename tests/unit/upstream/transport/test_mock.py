from __future__ import annotations

import pytest

from router.policy.schema import Timeouts
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import MockTransport

CALL = UpstreamCall("c", "http://e/v1", "m", {"model": "m", "messages": []}, False, False, {}, Timeouts())


async def test_the_handler_answers_and_calls_are_recorded() -> None:
    done = Completion(b"{}", None, "m", ())

    async def handler(call: UpstreamCall) -> Completion:
        return done

    t = MockTransport(handler)
    assert await t.complete(CALL) is done
    assert t.calls == [CALL]
    with pytest.raises(TypeError):
        await t.stream(CALL)


async def test_streams_are_observed_like_real_ones() -> None:
    async def handler(call: UpstreamCall) -> list[bytes]:
        return [b'data: {"model": "m", "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 5}}\n\n']

    stream = await MockTransport(handler).stream(CALL)
    assert [e async for e in stream.events()] == []  # the usage chunk is hidden: the call did not ask for it
    assert stream.state.usage is not None
    assert stream.state.usage.output_tokens == 5
    await stream.aclose()
    assert stream.closed
