"""A request's hold on a cluster: what acquire() refuses and why, one endpoint per attempt, the retry slot
of each attempt after the first, and a release that happens once."""

from __future__ import annotations

import pytest

from router.policy.compile import compile_texts
from router.upstream.cluster import ClusterRuntime
from router.upstream.lease import Lease, Refusal, Step
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import MockTransport
from tests.unit.inproc import inproc_clusters

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    model: m
    endpoints: ["http://10.0.0.1:1/v1", "http://10.0.0.2:1/v1", "http://10.0.0.3:1/v1"]
    max_attempts: 2
    circuit_breaker: {max_in_flight: 1, max_pending: 0, max_retries: 1, min_retry_concurrency: 1}
models:
  m: {cluster: pool}
"""


async def _ok(call: UpstreamCall) -> Completion:
    return Completion(b"{}", None, "m", ())


def _pool(text: str = POLICY) -> ClusterRuntime:
    policy = compile_texts([("p.yaml", text)], env={})
    return inproc_clusters(policy, {"pool": MockTransport(_ok)})["pool"]


async def _lease(pool: ClusterRuntime, tried: set[tuple[str, str]] | None = None) -> Lease:
    got = await pool.acquire(None, set() if tried is None else tried, False, None)
    assert isinstance(got, Lease), got
    return got


async def test_each_attempt_gets_an_untried_endpoint_and_retries_hold_a_retry_slot() -> None:
    pool = _pool()
    tried: set[tuple[str, str]] = set()
    lease = await _lease(pool, tried)
    assert pool.in_flight == 1
    first = lease.next(None)
    assert isinstance(first, Step)
    assert not first.retry
    assert pool.retries == 0
    lease.done()
    second = lease.next(None)
    assert isinstance(second, Step)
    assert second.retry
    assert second.endpoint is not first.endpoint
    assert pool.retries == 1  # held while the retry runs
    lease.done()
    assert pool.retries == 0
    assert tried == {("pool", first.endpoint.url), ("pool", second.endpoint.url)}  # the request's, across clusters
    spent = lease.next(None)
    assert spent == Refusal("failed", "2 attempt(s) failed")
    lease.release()
    lease.release()  # once only: a second release must not free another request's slot
    assert pool.in_flight == 0


async def test_a_spent_retry_budget_refuses_the_retry_not_the_first_attempt() -> None:
    pool = _pool()
    lease = await _lease(pool)
    assert isinstance(lease.next(None), Step)
    lease.done()
    pool.retries = 1  # another request's retry holds the whole budget
    refused = lease.next(None)
    assert isinstance(refused, Refusal)
    assert (refused.reason, refused.detail) == ("retry_budget", "retry budget spent (1 in flight)")
    lease.release()


async def test_a_full_cluster_refuses_with_when_to_come_back() -> None:
    pool = _pool()
    held = await _lease(pool)
    refused = await pool.acquire(None, set(), False, None)
    assert isinstance(refused, Refusal)
    assert refused.reason == "full"
    assert refused.back_in == pytest.approx(pool.config.circuit_breaker.pending_timeout_ms / 1000)
    held.release()
    assert isinstance(await pool.acquire(None, set(), False, None), Lease)


async def test_no_available_endpoint_refuses_before_taking_a_slot() -> None:
    pool = _pool()
    for e in pool.endpoints:
        e.outlier.ejected_until = pool.clock() + 30
    refused = await pool.acquire(None, set(), False, None)
    assert isinstance(refused, Refusal)
    assert refused.reason == "no_endpoint"
    assert refused.back_in == pytest.approx(30, abs=0.5)
    assert pool.in_flight == 0


async def test_an_unconfigured_cluster_says_so_to_operators_only() -> None:
    pool = _pool()
    pool.unavailable_reason = "no API key (OPENAI_API_KEY is not set)"
    refused = await pool.acquire(None, set(), False, None)
    assert refused == Refusal("unavailable", "no API key (OPENAI_API_KEY is not set)", public="not configured")


async def test_the_first_attempt_uses_the_candidates_acquire_found() -> None:
    pool = _pool()
    tried = {("pool", pool.endpoints[0].url), ("pool", pool.endpoints[1].url)}
    lease = await _lease(pool, tried)
    step = lease.next(None)
    assert isinstance(step, Step)
    assert step.endpoint is pool.endpoints[2]
    lease.done()
    assert lease.next(None) == Refusal("no_endpoint", "every endpoint tried")
    lease.release()
