"""The relay after the first byte, with the accounting stage's StreamTail as a recording fake: the order of
its three parts, the slot given back however the stream ends, and who is blamed for each ending."""

from __future__ import annotations

import orjson
import pytest

from router.api.chat import parse_chat_request
from router.pipeline.attempts import Attempts, OpenStream
from router.pipeline.relay import Relay, StreamTail
from router.types import RequestOutcome, Target, Usage
from router.upstream.cluster import ClusterRuntime
from router.upstream.lease import Lease
from router.upstream.transport.base import StreamBroken, StreamState, UpstreamCall
from router.upstream.transport.mock import Events, MockTransport
from tests.unit.inproc import inproc_state

CHUNK = b'data: {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\n'
DONE = b"data: [DONE]\n\n"


class Tail:
    """Records what the relay asks of the accounting stage, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.settled: Usage | None = None

    def value(self) -> StreamTail:
        async def usage(st: StreamState) -> Usage:
            self.calls.append("usage")
            return Usage(3, 1)

        def before_done(u: Usage) -> bytes:
            self.calls.append("before_done")
            return b": cost\n\n"

        async def finish(u: Usage) -> None:
            self.calls.append("finish")
            self.settled = u

        return StreamTail(usage, before_done, finish)


async def _open(events: Events) -> tuple[OpenStream, ClusterRuntime, RequestOutcome]:
    async def handler(call: UpstreamCall) -> Events:
        return events

    state = inproc_state({"pool": MockTransport(handler), "api": MockTransport(handler)})
    cluster = state.serving.upstreams.clusters["pool"]
    lease = await cluster.acquire(None, set(), False, None)
    assert isinstance(lease, Lease)
    chat = parse_chat_request(
        orjson.dumps({"model": "pool", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    )
    outcome = RequestOutcome("r")
    opened = await Attempts(state.metrics, state.tracing).attempt(
        chat, lease, cluster.endpoints[0], Target("pool"), outcome, None, False
    )
    assert isinstance(opened, OpenStream)
    assert cluster.in_flight == 1
    return opened, cluster, outcome


def _relay(opened: OpenStream) -> Relay:
    return Relay(inproc_state({"pool": MockTransport(_never), "api": MockTransport(_never)}).metrics)


async def _never(call: UpstreamCall) -> Events:
    raise AssertionError("not called")


async def test_the_cost_comment_goes_just_before_done_and_settlement_after_the_end() -> None:
    opened, cluster, outcome = await _open([CHUNK, DONE])
    tail, sent = Tail(), []

    async def write(data: bytes) -> None:
        sent.append(data)

    await _relay(opened).relay(opened, tail.value(), write, outcome)
    assert sent == [CHUNK, b": cost\n\n", DONE]
    assert tail.calls == ["usage", "before_done", "usage", "finish"]
    assert tail.settled == Usage(3, 1)
    assert outcome.usage == Usage(3, 1)
    assert opened.record.outcome == "success"
    assert (cluster.in_flight, opened.endpoint.in_flight) == (0, 0)
    assert cluster.latency.count(cluster.clock()) == 1


async def test_a_client_that_goes_away_is_not_held_against_the_endpoint() -> None:
    opened, cluster, outcome = await _open([CHUNK, CHUNK, DONE])
    tail = Tail()

    async def write(data: bytes) -> None:
        raise ConnectionResetError("client closed")

    with pytest.raises(ConnectionResetError):
        await _relay(opened).relay(opened, tail.value(), write, outcome)
    assert outcome.error_type == "client_disconnected"
    assert opened.endpoint.failures == 0
    assert tail.calls[-1] == "finish"  # what was streamed is still paid for
    assert cluster.in_flight == 0
    assert opened.stream.closed  # type: ignore[attr-defined]


async def test_a_break_is_the_endpoints_failure_and_the_stream_still_ends_cleanly() -> None:
    opened, cluster, outcome = await _open([CHUNK, StreamBroken("timeout", "stalled")])
    tail, sent = Tail(), []

    async def write(data: bytes) -> None:
        sent.append(data)

    await _relay(opened).relay(opened, tail.value(), write, outcome)
    assert sent[-1] == DONE
    assert b"pool: timeout" in sent[-2]
    assert outcome.error_type == "stream_timeout"
    assert opened.endpoint.failures == 1
    assert opened.record.outcome == "error"
    assert cluster.in_flight == 0


async def test_an_abandoned_stream_is_closed_settled_and_released() -> None:
    opened, cluster, _ = await _open([CHUNK, DONE])
    tail = Tail()
    await _relay(opened).abandon(opened, tail.value())
    assert opened.stream.closed  # type: ignore[attr-defined]
    assert tail.calls == ["usage", "finish"]
    assert opened.record.error_type == "client_disconnected"
    assert (cluster.in_flight, opened.endpoint.in_flight) == (0, 0)
