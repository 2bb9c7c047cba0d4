from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from router.policy.compile import compile_texts
from router.upstream.upstreams import EmulatedUpstreams, build_upstreams

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, endpoints: [emulated, "http://10.0.0.1:8000/v1"], model: m, circuit_breaker: {max_in_flight: 2}}
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


async def test_endpoints_keep_their_state_across_a_changed_cluster(session: aiohttp.ClientSession) -> None:
    policy = compile_texts([("p.yaml", POLICY)], env={})
    first = build_upstreams(policy, session, EmulatedUpstreams(), env={})
    endpoint = first.clusters["pool"].endpoints[0]
    endpoint.healthy = False
    changed = compile_texts([("p.yaml", POLICY.replace("max_in_flight: 2", "max_in_flight: 3"))], env={})
    second = build_upstreams(changed, session, EmulatedUpstreams(), previous=first, env={})
    assert second.clusters["pool"] is not first.clusters["pool"]
    assert second.clusters["pool"].endpoints[0] is endpoint
