"""Failover across a decision's targets, over in-process transports: retries on the next endpoint, spill-over
when a cluster is full or down, the panic pass, the caller's deadline, and slots always given back."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import orjson
import pytest

from router.api.chat import ChatRequest, parse_chat_request
from router.errors import AttemptFailed, NoUpstreamAvailable, UpstreamRejected, UpstreamTimeout
from router.pipeline.attempts import Attempts, OpenStream
from router.pipeline.failover import Failover
from router.policy.compile import compile_texts
from router.telemetry.metrics import Metrics
from router.telemetry.tracing import build_tracing
from router.types import Decision, RequestOutcome
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import Events, MockTransport
from router.upstream.upstreams import Upstreams
from tests.unit.inproc import inproc_clusters, settled

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    model: m
    endpoints: ["http://10.0.0.1:1/v1", "http://10.0.0.2:1/v1"]
    max_attempts: 2
    circuit_breaker: {max_in_flight: 4, max_pending: 0, min_retry_concurrency: 2}
    fallbacks: [api]
  api:
    kind: frontier
    model: openai/m
    price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
models:
  pool: {cluster: pool}
"""
OK = Completion(b'{"choices": []}', None, "m", ("stop",))


class Upstream:
    """A mock upstream that fails for the endpoints named in ``down`` and counts every call."""

    def __init__(self, down: tuple[str, ...] = ()) -> None:
        self.down = down
        self.transport = MockTransport(self)

    async def __call__(self, call: UpstreamCall) -> Completion:
        if any(d in call.endpoint for d in self.down):
            raise AttemptFailed(f"cannot reach {call.endpoint}", kind="connect", retriable=True)
        return OK

    @property
    def endpoints(self) -> list[str]:
        return [c.endpoint for c in self.transport.calls]


def _setup(pool: Upstream, api: Upstream) -> tuple[Failover, Upstreams, Decision, Metrics]:
    policy = compile_texts([("p.yaml", POLICY)], env={})
    metrics = Metrics()
    upstreams = Upstreams(inproc_clusters(policy, {"pool": pool.transport, "api": api.transport}))
    return Failover(Attempts(metrics, build_tracing({})), metrics), upstreams, policy.pinned["pool"], metrics


def _chat() -> ChatRequest:
    return parse_chat_request(orjson.dumps({"model": "pool", "messages": [{"role": "user", "content": "x"}]}))


async def test_a_failed_attempt_is_retried_on_the_other_replica() -> None:
    pool, api = Upstream(down=("10.0.0.1",)), Upstream()
    failover, upstreams, decision, _ = _setup(pool, api)
    for _ in range(4):  # whichever replica is picked first, the request is answered by the pool
        outcome = RequestOutcome("r")
        assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is OK
        assert outcome.cluster == "pool"
        assert outcome.attempts[-1].endpoint == "http://10.0.0.2:1/v1"
        if len(outcome.attempts) == 2:
            assert outcome.attempts[1].retry
            assert outcome.attempts[0].next_reason == "connect"
    assert api.endpoints == []
    settled(upstreams)


async def test_a_full_cluster_spills_over_to_its_fallback() -> None:
    pool, api = Upstream(), Upstream()
    failover, upstreams, decision, metrics = _setup(pool, api)
    cluster = upstreams.clusters["pool"]
    cluster.in_flight = 4  # other requests hold every slot
    outcome = RequestOutcome("r")
    assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is OK
    assert outcome.cluster == "api"
    assert outcome.skipped == ["pool: full (4 in flight)"]
    assert metrics.breaker_rejections.labels("pool", "in_flight")._value.get() == 1
    assert metrics.spillovers.labels("pool", "full")._value.get() == 1
    assert pool.endpoints == []
    cluster.in_flight = 0
    settled(upstreams)


async def test_every_target_out_is_a_503_with_when_to_retry() -> None:
    pool, api = Upstream(), Upstream()
    failover, upstreams, decision, _ = _setup(pool, api)
    for c in upstreams.clusters.values():
        for e in c.endpoints:
            e.outlier.ejected_until = c.clock() + 7
    with pytest.raises(NoUpstreamAvailable) as info:
        await failover.run(upstreams, _chat(), {}, decision, RequestOutcome("r"), None)
    assert info.value.headers()["Retry-After"] == "7"
    assert pool.endpoints == api.endpoints == []
    settled(upstreams)


async def test_the_panic_pass_tries_endpoints_only_health_checks_call_down() -> None:
    pool, api = Upstream(), Upstream()
    failover, upstreams, decision, _ = _setup(pool, api)
    for e in upstreams.clusters["pool"].endpoints:
        e.healthy = False
    upstreams.clusters["api"].endpoints[0].outlier.ejected_until = time.monotonic() + 60
    outcome = RequestOutcome("r")
    assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is OK
    assert outcome.cluster == "pool"  # better a replica the checks doubt than no answer
    settled(upstreams)


async def test_a_passed_deadline_tries_nothing_more() -> None:
    pool, api = Upstream(), Upstream()
    failover, upstreams, decision, _ = _setup(pool, api)
    with pytest.raises(UpstreamTimeout) as info:
        await failover.run(upstreams, _chat(), {}, decision, RequestOutcome("r"), time.monotonic() - 0.001)
    assert "deadline" in info.value.message
    assert pool.endpoints == api.endpoints == []
    settled(upstreams)


async def test_a_cancelled_request_gives_its_slot_back() -> None:
    started = asyncio.Event()

    async def hang(call: UpstreamCall) -> Completion:
        started.set()
        await asyncio.sleep(60)
        return OK

    pool, api = Upstream(), Upstream()
    pool.transport = MockTransport(hang)
    failover, upstreams, decision, _ = _setup(pool, api)
    task = asyncio.ensure_future(failover.run(upstreams, _chat(), {}, decision, RequestOutcome("r"), None))
    await started.wait()
    assert upstreams.clusters["pool"].in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    settled(upstreams)
    assert all(e.in_flight == 0 for e in upstreams.clusters["pool"].endpoints)


SHARED = """
version: 1
clusters:
  a: {kind: vllm, model: model-a, endpoints: ["http://gateway:8000/v1"], fallbacks: [b]}
  b: {kind: vllm, model: model-b, endpoints: ["http://gateway:8000/v1"]}
models:
  a: {cluster: a}
"""


async def test_clusters_sharing_one_url_are_separate_endpoints() -> None:
    """Issue #14: an endpoint is its cluster and URL. One server serving two models: once cluster a's
    endpoint was tried, cluster b's (the same URL, another model) was skipped as "every endpoint tried"."""
    seen: list[str] = []

    async def only_b(call: UpstreamCall) -> Completion:
        seen.append(call.upstream_model)
        if call.upstream_model == "model-a":
            raise AttemptFailed("model-a is overloaded", kind="http_503", retriable=True)
        return OK

    policy = compile_texts([("p.yaml", SHARED)], env={})
    metrics = Metrics()
    transport = MockTransport(only_b)
    upstreams = Upstreams(inproc_clusters(policy, {"a": transport, "b": transport}))
    failover = Failover(Attempts(metrics, build_tracing({})), metrics)
    outcome = RequestOutcome("r")
    assert await failover.run(upstreams, _chat(), {}, policy.pinned["a"], outcome, None) is OK
    assert seen == ["model-a", "model-a", "model-b"]  # a's one endpoint retried once, then b on the same server
    assert outcome.cluster == "b"
    a, b = upstreams.clusters["a"].endpoints[0], upstreams.clusters["b"].endpoints[0]
    assert a is not b
    assert (a.failures, b.failures) == (2, 0)  # the failures are model-a's, not the server's


def _too_long(call: UpstreamCall) -> UpstreamRejected:
    message = "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens."
    return UpstreamRejected(400, {"object": "error", "message": message, "type": "BadRequestError", "code": 400})


async def test_a_prompt_too_long_for_one_model_goes_to_the_next_target() -> None:
    """Issue #14: ``context_length_exceeded`` went to the client although the route's fallback had a larger
    context. The same model is not asked again; the endpoint is not blamed."""

    async def too_long(call: UpstreamCall) -> Completion:
        raise _too_long(call)

    pool, api = Upstream(), Upstream()
    pool.transport = MockTransport(too_long)
    failover, upstreams, decision, _ = _setup(pool, api)
    outcome = RequestOutcome("r")
    assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is OK
    assert outcome.cluster == "api"
    assert len(pool.transport.calls) == 1  # not the pool's other replica: the same model, the same context
    assert outcome.attempts[0].next_reason == "context_length_exceeded"
    assert all(e.failures == 0 for e in upstreams.clusters["pool"].endpoints)
    settled(upstreams)


async def test_too_long_for_every_model_is_the_clients_400_with_its_reason() -> None:
    async def too_long(call: UpstreamCall) -> Completion:
        raise _too_long(call)

    pool, api = Upstream(), Upstream()
    pool.transport, api.transport = MockTransport(too_long), MockTransport(too_long)
    failover, upstreams, decision, _ = _setup(pool, api)
    with pytest.raises(UpstreamRejected) as info:
        await failover.run(upstreams, _chat(), {}, decision, RequestOutcome("r"), None)
    assert info.value.status == 400
    assert "maximum context length" in info.value.message
    settled(upstreams)


async def test_any_other_rejection_is_the_clients_at_once() -> None:
    async def filtered(call: UpstreamCall) -> Completion:
        raise UpstreamRejected(
            400, {"error": {"message": "filtered", "type": "invalid_request_error", "code": "content_filter"}}
        )

    pool, api = Upstream(), Upstream()
    pool.transport = MockTransport(filtered)
    failover, upstreams, decision, _ = _setup(pool, api)
    with pytest.raises(UpstreamRejected) as info:
        await failover.run(upstreams, _chat(), {}, decision, RequestOutcome("r"), None)
    assert info.value.code == "content_filter"
    assert api.endpoints == []  # not retried anywhere: the content is the request's
    settled(upstreams)


ONE = """
version: 1
clusters:
  pool:
    kind: vllm
    model: m
    endpoints: ["http://10.0.0.1:1/v1"]
    retry: {backoff_base_ms: 20, backoff_max_ms: 40, max_retry_after_s: 1}
    fallbacks: [api]
  api:
    kind: frontier
    model: openai/m
    price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
models:
  pool: {cluster: pool}
"""


class Script:
    """An upstream that fails with the given failures in turn, then answers; it notes when each call came."""

    def __init__(self, *failures: AttemptFailed) -> None:
        self.failures = list(failures)
        self.at: list[float] = []

    async def __call__(self, call: UpstreamCall) -> Completion:
        self.at.append(time.monotonic())
        if self.failures:
            raise self.failures.pop(0)
        return OK


def _one(pool: Script) -> tuple[Failover, Upstreams, Decision, MockTransport]:
    policy = compile_texts([("p.yaml", ONE)], env={})
    metrics, api = Metrics(), MockTransport(Script())
    upstreams = Upstreams(inproc_clusters(policy, {"pool": MockTransport(pool), "api": api}))
    return Failover(Attempts(metrics, build_tracing({})), metrics), upstreams, policy.pinned["pool"], api


async def test_a_one_endpoint_cluster_retries_once_after_a_jittered_backoff() -> None:
    """Issue #14: a single 500 from a one-endpoint cluster went straight to the fallback."""
    pool = Script(AttemptFailed("boom", kind="http_500", retriable=True))
    failover, upstreams, decision, api = _one(pool)
    outcome = RequestOutcome("r")
    assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is OK
    assert outcome.cluster == "pool"
    assert api.calls == []
    assert 0 <= pool.at[1] - pool.at[0] <= 0.2  # waited, but no more than the backoff's cap and some slack
    assert outcome.attempts[1].retry
    settled(upstreams)


async def test_retry_after_is_waited_out_when_it_fits() -> None:
    pool = Script(AttemptFailed("slow down", kind="http_429", retriable=True, retry_after_s=0.3))
    failover, upstreams, decision, _api = _one(pool)
    outcome = RequestOutcome("r")
    assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is OK
    assert outcome.cluster == "pool"
    assert pool.at[1] - pool.at[0] >= 0.3  # never before the upstream said
    settled(upstreams)


async def test_a_retry_after_longer_than_the_policy_or_the_deadline_goes_to_the_fallback_at_once() -> None:
    for retry_after, deadline_s in ((5.0, None), (0.5, 0.2)):
        pool = Script(AttemptFailed("slow down", kind="http_429", retriable=True, retry_after_s=retry_after))
        failover, upstreams, decision, _api = _one(pool)
        outcome = RequestOutcome("r")
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        started = time.monotonic()
        assert await failover.run(upstreams, _chat(), {}, decision, outcome, deadline) is OK
        assert outcome.cluster == "api"
        assert len(pool.at) == 1
        assert time.monotonic() - started < 0.15
        settled(upstreams)


async def test_timeouts_and_operator_errors_are_not_retried_on_the_same_endpoint() -> None:
    for failure in (
        AttemptFailed("late", kind="timeout", retriable=True, timeout=True),
        AttemptFailed("answered HTTP 401", kind="http_401", retriable=True),
    ):
        pool = Script(failure)
        failover, upstreams, decision, _ = _one(pool)
        outcome = RequestOutcome("r")
        assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is OK
        assert (outcome.cluster, len(pool.at)) == ("api", 1)


async def test_a_routes_first_token_target_cuts_a_streams_wait_except_on_the_last_target() -> None:
    """Issue #14: a stream whose first token took 20 s waited the whole first_byte_s before failing over."""
    limits: list[float] = []

    async def note(call: UpstreamCall) -> Events:
        limits.append(call.first_byte_s)
        return [b'data: {"id": "c", "model": "m", "choices": []}\n\n', b"data: [DONE]\n\n"]

    policy = compile_texts(
        [
            (
                "p.yaml",
                POLICY.replace(
                    "models:\n  pool: {cluster: pool}", "models:\n  pool: {cluster: pool, latency: {max_ttft_ms: 300}}"
                ),
            )
        ],
        env={},
    )
    metrics = Metrics()
    upstreams = Upstreams(inproc_clusters(policy, {"pool": MockTransport(note), "api": MockTransport(note)}))
    failover = Failover(Attempts(metrics, build_tracing({})), metrics)
    decision = policy.pinned["pool"]
    body = {"model": "pool", "messages": [{"role": "user", "content": "x"}], "stream": True}
    stream = await failover.run(
        upstreams, parse_chat_request(orjson.dumps(body)), {}, decision, RequestOutcome("r"), None
    )
    assert isinstance(stream, OpenStream)
    assert limits == [0.3]  # the pool is not the last target: 300 ms for its first token, then the API
    stream.lease.release()
    last_only = replace(decision, targets=decision.targets[-1:])
    again = await failover.run(
        upstreams, parse_chat_request(orjson.dumps(body)), {}, last_only, RequestOutcome("r"), None
    )
    assert isinstance(again, OpenStream)
    assert limits[1] > 0.3  # the last target keeps its cluster's own limit
    again.lease.release()
