"""The two kinds of cluster behind one interface: a self-hosted pool and a frontier API differ in
attempts, endpoint choice, how failures count, health checks and readiness."""

from __future__ import annotations

from router.errors import AttemptFailed
from router.policy.compile import compile_texts
from router.upstream.kinds import ApiCluster, PoolCluster
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import MockTransport
from tests.unit.inproc import inproc_clusters
from tests.unit.pools import TIERED, compiled

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    model: m
    endpoints: ["http://10.0.0.1:1/v1", "http://10.0.0.2:1/v1"]
    max_attempts: 3
    load_balancing: {policy: round_robin, affinity: prefix}
    outlier_detection: {consecutive_failures: 1, max_ejection_percent: 50}
  api:
    kind: frontier
    model: openai/m
    price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
    cooldown: {consecutive_failures: 3}
models:
  m: {cluster: pool}
  a: {cluster: api}
"""


async def _ok(call: UpstreamCall) -> Completion:
    return Completion(b"{}", None, "m", ())


def _clusters() -> tuple[PoolCluster, ApiCluster]:
    policy = compile_texts([("p.yaml", POLICY)], env={})
    c = inproc_clusters(policy, {"pool": MockTransport(_ok), "api": MockTransport(_ok)})
    pool, api = c["pool"], c["api"]
    assert isinstance(pool, PoolCluster)
    assert isinstance(api, ApiCluster)
    return pool, api


def _failure(kind: str) -> AttemptFailed:
    return AttemptFailed("boom", kind=kind, retriable=True)


def test_what_each_kind_takes() -> None:
    pool, api = _clusters()
    assert (pool.max_attempts, api.max_attempts) == (3, 1)
    assert (pool.takes_vllm_fields, api.takes_vllm_fields) == (True, False)
    assert pool.health_check is not None
    assert api.health_check is None
    assert (pool.out_word, api.out_word) == ("ejected", "cooling down")


def test_only_a_pool_balances_by_affinity() -> None:
    pool, api = _clusters()
    asked: list[str] = []

    def keys(mode: str) -> bytes:
        asked.append(mode)
        return b"k"

    assert pool.affinity_key(keys) == b"k"
    assert api.affinity_key(keys) is None
    assert asked == ["prefix"]  # computed only for the kind that uses it


def test_a_pool_never_ejects_past_its_share_an_api_cools_down_at_a_429() -> None:
    pool, api = _clusters()
    one, two = pool.endpoints
    assert pool.record_failure(one, _failure("http_503")) is not None
    assert pool.record_failure(two, _failure("http_503")) is None  # 50 %: the last half stays in
    assert pool.candidates(None, set()).endpoints == [two]
    (endpoint,) = api.endpoints
    assert api.record_failure(endpoint, _failure("http_429")) is not None  # at once, below the streak of 3
    none = api.candidates(None, set())
    assert none.endpoints == []
    assert none.why.startswith("cooling down for ")
    assert not none.down_only


def test_round_robin_without_affinity_takes_turns() -> None:
    pool, _ = _clusters()
    picks = [pool.pick(None, None, set()).endpoint for _ in range(4)]
    assert picks[0] is not picks[1]
    assert picks[0] is picks[2]


def test_readiness_by_kind() -> None:
    pool, api = _clusters()
    assert pool.readiness(pool.clock()) == {"ready": True, "endpoints_up": 2, "endpoints": 2}
    for e in pool.endpoints:
        e.healthy = False
    assert pool.readiness(pool.clock())["ready"] is False
    assert api.readiness(api.clock()) == {"ready": True, "provider": "mock"}


def test_an_openai_compatible_pool_is_a_pool_without_vllms_extras_or_probes() -> None:
    """Issue #14: a server that is not vLLM (no /health, no /metrics) was marked down by its probes."""
    text = """
version: 1
clusters:
  llama: {kind: openai, model: m, endpoints: ["http://10.0.0.1:1/v1"]}
  checked: {kind: openai, model: m, endpoints: ["http://10.0.0.2:1/v1"], health_check: {path: /healthz}}
models:
  m: {cluster: llama}
"""
    policy = compile_texts([("p.yaml", text)], env={})
    c = inproc_clusters(policy, {"llama": MockTransport(_ok), "checked": MockTransport(_ok)})
    llama, checked = c["llama"], c["checked"]
    assert isinstance(llama, PoolCluster)
    assert not llama.takes_vllm_fields
    assert llama.health_check is not None
    assert (llama.health_check.enabled, llama.health_check.metrics_interval_s) == (False, 0)
    assert checked.health_check is not None
    assert checked.health_check.enabled  # said once in the policy, and then it is probed


def _tiered() -> PoolCluster:
    policy = compiled(TIERED)
    pool = inproc_clusters(policy, {"pool": MockTransport(_ok), "other": MockTransport(_ok)})["pool"]
    assert isinstance(pool, PoolCluster)
    return pool


def _picks(pool: PoolCluster, n: int = 400) -> dict[str, int]:
    out: dict[str, int] = {}
    for _ in range(n):
        e = pool.pick(None, None, set()).endpoint
        assert e is not None
        out[e.tier_name] = out.get(e.tier_name, 0) + 1
    return out


def test_the_cheapest_tier_takes_the_traffic_while_it_is_healthy() -> None:
    pool = _tiered()
    assert [(e.tier, e.tier_name) for e in pool.endpoints] == [(0, "spot"), (0, "spot"), (1, "on-demand")]
    assert _picks(pool) == {"spot": 400}


def test_a_tier_that_lost_endpoints_spills_its_share_to_the_next() -> None:
    pool = _tiered()
    pool.endpoints[0].healthy = False  # a spot replica reclaimed: spot is 50 % healthy -> 70 % of traffic
    picks = _picks(pool, 2000)
    assert 0.62 < picks["spot"] / 2000 < 0.78
    pool.endpoints[1].outlier.ejected_until = pool.clock() + 60  # the other one ejected: all on demand
    assert _picks(pool) == {"on-demand": 400}


def test_full_endpoints_spill_to_the_next_tier_and_every_tier_full_uses_them_all() -> None:
    pool = _tiered()
    pool.endpoints[0].in_flight = pool.endpoints[1].in_flight = 2  # at endpoint_capacity
    assert _picks(pool) == {"on-demand": 400}
    pool.endpoints[2].in_flight = 2
    assert set(_picks(pool)) == {"spot", "on-demand"}  # nowhere has room: all of them, by load
