"""The pipeline over in-process transports: which targets a request may go to, and what a client hears."""

from __future__ import annotations

import orjson
import pytest

from router.api.chat import ChatRequest, parse_chat_request
from router.errors import AttemptFailed, InvalidRequest, UpstreamError
from router.pipeline.sequence import Pipeline, Streaming
from router.tenancy.auth import Principal
from router.types import RequestOutcome
from router.upstream.transport.base import Completion, StreamBroken, UpstreamCall
from router.upstream.transport.mock import Events, MockTransport
from tests.unit.inproc import inproc_state

OK = Completion(b'{"choices": []}', None, "m", ("stop",))
ANON = Principal("anonymous", None)


async def _ok(call: UpstreamCall) -> Completion:
    return OK


async def _down(call: UpstreamCall) -> Completion:
    raise AttemptFailed(f"cannot reach upstream: {call.endpoint}", kind="connect", retriable=True)


def _chat(model: str, **extra: object) -> ChatRequest:
    return parse_chat_request(orjson.dumps({"model": model, "messages": [{"role": "user", "content": "x"}], **extra}))


async def test_vllm_extras_never_reach_a_frontier_api() -> None:
    api = MockTransport(_ok)
    pipeline = Pipeline(inproc_state({"pool": MockTransport(_ok), "api": api}))
    with pytest.raises(InvalidRequest) as info:
        await pipeline.open(_chat("api", guided_regex="a+"), {}, RequestOutcome("r"), ANON)
    assert info.value.param == "guided_regex"
    assert api.calls == []


async def test_a_vllm_extra_skips_the_frontier_fallback() -> None:
    api = MockTransport(_ok)
    pipeline = Pipeline(inproc_state({"pool": MockTransport(_down), "api": api}))
    outcome = RequestOutcome("r")
    with pytest.raises(UpstreamError):
        await pipeline.open(_chat("pool", min_tokens=2), {}, outcome, ANON)
    assert api.calls == []  # the pool failed; its frontier fallback does not take min_tokens
    assert "api: does not take min_tokens (vLLM only)" in outcome.skipped


async def test_clients_hear_the_cluster_and_the_kind_of_failure_never_the_url() -> None:
    pipeline = Pipeline(inproc_state({"pool": MockTransport(_down), "api": MockTransport(_down)}))
    with pytest.raises(UpstreamError) as info:
        await pipeline.open(_chat("pool"), {}, RequestOutcome("r"), ANON)
    message = info.value.message
    assert message.startswith("Every upstream attempt failed: pool: could not be reached; ")
    assert message.endswith("api: could not be reached")
    assert "internal" not in message
    assert "s3cret" not in message


async def test_the_fallback_answers_when_the_primary_is_down() -> None:
    api = MockTransport(_ok)
    pipeline = Pipeline(inproc_state({"pool": MockTransport(_down), "api": api}))
    outcome = RequestOutcome("r")
    result = await pipeline.open(_chat("pool"), {}, outcome, ANON)
    assert result is OK
    assert outcome.cluster == "api"
    # the one replica retried once, then the fallback
    pool_url, api_url = "http://pool.internal:8000/v1", "http://api.internal/v1"
    assert [a.endpoint for a in outcome.attempts] == [pool_url, pool_url, api_url]


async def test_a_stream_is_relayed_and_costed_at_its_end() -> None:
    def event(obj: dict[str, object]) -> bytes:
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    events = [
        event({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}),
        event({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        event({"id": "c", "model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
        b"data: [DONE]\n\n",
    ]

    async def streamed(call: UpstreamCall) -> list[bytes]:
        assert call.body["stream_options"] == {"include_usage": False}  # as sent; the vLLM transport forces it on
        return events

    pipeline = Pipeline(inproc_state({"pool": MockTransport(streamed), "api": MockTransport(_ok)}))
    outcome = RequestOutcome("r")
    opened = await pipeline.open(_chat("pool", stream=True, stream_options={"include_usage": False}), {}, outcome, ANON)
    assert isinstance(opened, Streaming)
    sent: list[bytes] = []

    async def write(data: bytes) -> None:
        sent.append(data)

    await pipeline.relay(opened, write, outcome)
    assert sent[-1] == b"data: [DONE]\n\n"
    assert sent[-2].startswith(b": router-cost ")
    assert not any(b'"usage"' in s for s in sent)  # the client did not ask for the usage chunk
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (3, 1)
    assert outcome.cost_usd is not None
    assert outcome.cost_usd > 0


async def test_a_stream_that_breaks_ends_with_an_error_event_naming_the_cluster_not_the_url() -> None:
    first = b'data: {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\n'

    async def breaks(call: UpstreamCall) -> Events:
        return [first, StreamBroken("protocol", f"upstream stream broke: {call.endpoint} closed")]

    pipeline = Pipeline(inproc_state({"pool": MockTransport(breaks), "api": MockTransport(_ok)}))
    outcome = RequestOutcome("r")
    streaming = await pipeline.open(_chat("pool", stream=True), {}, outcome, ANON)
    assert isinstance(streaming, Streaming)
    sent: list[bytes] = []

    async def write(data: bytes) -> None:
        sent.append(data)

    await pipeline.relay(streaming, write, outcome)
    assert sent[0] == first
    assert b"The upstream stream broke (pool: protocol)." in sent[1]
    assert b"internal" not in b"".join(sent)
    assert sent[-1] == b"data: [DONE]\n\n"
    assert outcome.error_type == "stream_protocol"
    assert streaming.opened.endpoint.failures == 1  # a break mid-stream is the endpoint's failure
