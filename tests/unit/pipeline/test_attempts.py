"""One attempt: what its outcome teaches the cluster (blame), and what it sends (the output cap)."""

from __future__ import annotations

import time

import orjson
import pytest

from router.api.chat import parse_chat_request
from router.errors import AttemptFailed, UpstreamRejected
from router.pipeline.attempts import Attempts
from router.types import RequestOutcome, Target
from router.upstream.cluster import ClusterRuntime
from router.upstream.lease import Lease
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import MockTransport
from tests.unit.inproc import inproc_state

OK = Completion(b'{"choices": []}', None, "m", ("stop",))


def _setup(handler: MockTransport) -> tuple[Attempts, ClusterRuntime]:
    state = inproc_state({"pool": handler, "api": MockTransport(_ok)})
    cluster = state.serving.upstreams.get("pool")
    assert cluster is not None
    return Attempts(state.metrics, state.tracing), cluster


async def _ok(call: UpstreamCall) -> Completion:
    return OK


async def _attempt(
    attempts: Attempts, cluster: ClusterRuntime, body: dict[str, object], deadline: float | None
) -> None:
    chat = parse_chat_request(orjson.dumps({"model": "pool", "messages": [{"role": "user", "content": "x"}], **body}))
    lease = await cluster.acquire(None, set(), False, None)
    assert isinstance(lease, Lease)
    try:
        await attempts.attempt(chat, lease, cluster.endpoints[0], Target("pool"), RequestOutcome("r"), deadline, False)
    finally:
        lease.release()


async def test_a_timeout_the_callers_deadline_set_is_not_held_against_the_endpoint() -> None:
    async def slow(call: UpstreamCall) -> Completion:
        raise AttemptFailed("upstream timed out", kind="timeout", retriable=True, timeout=True)

    attempts, cluster = _setup(MockTransport(slow))
    endpoint = cluster.endpoints[0]
    with pytest.raises(AttemptFailed):
        await _attempt(attempts, cluster, {}, deadline=time.monotonic() + 0.05)  # shorter than first_byte_s
    assert (endpoint.failures, endpoint.outlier.consecutive) == (0, 0)
    with pytest.raises(AttemptFailed):
        await _attempt(attempts, cluster, {}, deadline=None)  # the cluster's own limit: the endpoint's
    assert (endpoint.failures, endpoint.outlier.consecutive) == (1, 1)
    assert "s3cret" not in endpoint.last_error


async def test_a_rejected_request_neither_counts_nor_forgives_unless_the_upstream_answered() -> None:
    outcomes: list[BaseException] = [
        AttemptFailed("boom", kind="http_503", retriable=True),
        UpstreamRejected(400, {"error": {"message": "bad"}}, answered=False),
        UpstreamRejected(400, {"error": {"message": "bad"}}, answered=True),
    ]

    async def handler(call: UpstreamCall) -> Completion:
        raise outcomes.pop(0)

    attempts, cluster = _setup(MockTransport(handler))
    endpoint = cluster.endpoints[0]
    with pytest.raises(AttemptFailed):
        await _attempt(attempts, cluster, {}, None)
    with pytest.raises(UpstreamRejected):
        await _attempt(attempts, cluster, {}, None)
    assert endpoint.outlier.consecutive == 1  # litellm's refusal proves nothing about the provider
    with pytest.raises(UpstreamRejected):
        await _attempt(attempts, cluster, {}, None)
    assert endpoint.outlier.consecutive == 0  # a real answer, even a 400, shows the endpoint works


async def test_every_attempt_carries_an_output_cap() -> None:
    transport = MockTransport(_ok)
    attempts, cluster = _setup(transport)
    await _attempt(attempts, cluster, {}, None)
    await _attempt(attempts, cluster, {"max_completion_tokens": 9}, None)
    first, second = (c.body for c in transport.calls)
    assert first["max_tokens"] == 64  # the pool's default_max_tokens
    assert "max_tokens" not in second
    assert second["max_completion_tokens"] == 9
    assert transport.calls[0].endpoint == "http://user:s3cret@pool.internal:8000/v1"  # the real URL is used
