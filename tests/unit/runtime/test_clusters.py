from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from router.policy.compile import compile_texts
from router.runtime.clusters import EmulatedUpstreams, build_upstreams

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, endpoints: [emulated, "http://10.0.0.1:8000/v1"], model: m, max_concurrency: 2}
  only-emulated: {kind: vllm, endpoints: [emulated], model: m}
  api: {kind: frontier, model: openai/gpt-4o, api_key_env: CLUSTER_TEST_KEY}
models:
  m: {cluster: pool}
"""


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_unconfigured_clusters_are_unavailable_not_faked(session: aiohttp.ClientSession) -> None:
    policy = compile_texts([("p.yaml", POLICY)], env={})
    ups = build_upstreams(policy, session, EmulatedUpstreams(), env={})
    assert [e.url for e in ups.clusters["pool"].endpoints] == ["http://10.0.0.1:8000/v1"]
    assert ups.clusters["only-emulated"].unavailable_reason is not None
    assert "CLUSTER_TEST_KEY" in str(ups.clusters["api"].unavailable_reason)
    keyed = build_upstreams(policy, session, EmulatedUpstreams(), env={"CLUSTER_TEST_KEY": "sk"})
    assert keyed.clusters["api"].unavailable_reason is None
    assert keyed.clusters["api"].api_key == "sk"


async def test_emulated_endpoints_and_reuse_across_reloads(session: aiohttp.ClientSession) -> None:
    policy = compile_texts([("p.yaml", POLICY)], env={})
    emulated = EmulatedUpstreams(
        vllm={"only-emulated": ["http://127.0.0.1:5555/v1"]}, frontier={"api": "http://127.0.0.1:5556/v1"}
    )
    first = build_upstreams(policy, session, emulated, env={})
    assert first.clusters["only-emulated"].endpoints[0].emulated
    assert first.clusters["api"].unavailable_reason is None
    assert first.clusters["api"].provider == "openai"
    first.clusters["pool"].in_flight = 1
    second = build_upstreams(policy, session, emulated, previous=first, env={})
    assert second.clusters["pool"] is first.clusters["pool"]


async def test_concurrency_limit_and_round_robin(session: aiohttp.ClientSession) -> None:
    text = POLICY.replace("[emulated, ", '["http://10.0.0.2:8000/v1", ')
    pool = build_upstreams(compile_texts([("p.yaml", text)], env={}), session, EmulatedUpstreams(), env={}).clusters[
        "pool"
    ]
    assert pool.try_acquire()
    assert pool.try_acquire()
    assert not pool.try_acquire()
    pool.release()
    assert pool.try_acquire()
    firsts = {pool.endpoint_order(1)[0].url for _ in range(4)}
    assert len(firsts) == 2
    pool.endpoints[0].healthy = False
    assert all(pool.endpoint_order(1)[0].url == pool.endpoints[1].url for _ in range(3))
