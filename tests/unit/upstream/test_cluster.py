"""One cluster: its circuit breaker (slots, pending waiters, their timeouts) and endpoint choice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from router.policy.compile import compile_texts
from router.upstream.upstreams import EmulatedUpstreams, build_upstreams
from tests.unit.upstream.test_upstreams import POLICY


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_concurrency_limit_and_pending_hand_over(session: aiohttp.ClientSession) -> None:
    text = POLICY.replace("[emulated, ", '["http://10.0.0.2:8000/v1", ')
    text = text.replace("circuit_breaker: {max_in_flight: 2}", "circuit_breaker: {max_in_flight: 2, max_pending: 1}")
    pool = build_upstreams(compile_texts([("p.yaml", text)], env={}), session, EmulatedUpstreams(), env={}).clusters[
        "pool"
    ]
    assert await pool.admit(None) is None
    assert await pool.admit(None) is None
    waiting = asyncio.ensure_future(pool.admit(None))  # full: this one waits as pending
    await asyncio.sleep(0)
    assert pool.pending == 1
    assert await pool.admit(None) == "pending_full"  # and no second one may wait
    pool.release()  # the slot goes straight to the waiter
    assert await waiting is None
    assert pool.in_flight == 2
    assert pool.pending == 0
    pool.release()
    pool.release()
    assert pool.in_flight == 0


async def test_a_pending_request_gives_up_at_its_timeout_or_deadline(session: aiohttp.ClientSession) -> None:
    text = POLICY.replace(
        "circuit_breaker: {max_in_flight: 2}",
        "circuit_breaker: {max_in_flight: 1, max_pending: 4, pending_timeout_ms: 30}",
    )
    pool = build_upstreams(compile_texts([("p.yaml", text)], env={}), session, EmulatedUpstreams(), env={}).clusters[
        "pool"
    ]
    assert pool.try_acquire()
    assert await pool.admit(None) == "pending_timeout"
    assert await pool.admit(pool.clock() - 1) == "pending_timeout"  # the deadline has passed: no wait at all
    assert pool.pending == 0
    assert pool.queue.count(pool.clock()) == 1  # the wait was measured
    pool.release()
    assert pool.in_flight == 0


async def test_pick_serves_the_adapter_and_skips_ejected_and_down(session: aiohttp.ClientSession) -> None:
    text = """
version: 1
clusters:
  pool:
    kind: vllm
    model: m
    adapters: [a, b]
    endpoints: ["http://10.0.0.1:1/v1", {url: "http://10.0.0.2:1/v1", adapters: [b]}, "http://10.0.0.3:1/v1"]
models:
  m: {cluster: pool, adapter: b}
"""
    pool = build_upstreams(compile_texts([("p.yaml", text)], env={}), session, EmulatedUpstreams(), env={}).clusters[
        "pool"
    ]
    one, two, three = pool.endpoints
    assert {pool.pick("a", None, set()).endpoint.url for _ in range(40)} == {one.url, three.url}  # type: ignore[union-attr]
    assert {pool.pick("b", None, set()).endpoint.url for _ in range(40)} == {one.url, two.url, three.url}  # type: ignore[union-attr]
    one.healthy = False
    three.outlier.ejected_until = pool.clock() + 60
    none = pool.candidates("a", set())
    assert none.endpoints == []
    assert none.why == "no available endpoint (1 ejected, 1 down by health checks)"
    assert none.down_only
    assert pool.candidates("a", set(), panic=True).endpoints == [one]  # panic tries what checks call down
    assert (
        pool.candidates("a", {("pool", one.url)}, panic=True).why
        == "no available endpoint (1 ejected, 0 down by health checks)"
    )
