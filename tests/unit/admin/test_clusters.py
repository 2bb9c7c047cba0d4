"""The admin view of the live clusters: each endpoint's state in words, limits, estimates, no secrets."""

from __future__ import annotations

from router.admin.clusters import status
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import MockTransport
from tests.unit.inproc import inproc_state


async def _ok(call: UpstreamCall) -> Completion:
    return Completion(b"{}", None, "m", ())


def test_every_cluster_and_endpoint_with_its_state_and_no_userinfo() -> None:
    state = inproc_state({"pool": MockTransport(_ok), "api": MockTransport(_ok)})
    upstreams = state.serving.upstreams
    pool = upstreams.clusters["pool"]
    (endpoint,) = pool.endpoints
    endpoint.outlier.ejected_until = pool.clock() + 5
    pool.ttft.observe(pool.clock(), 0.2)
    doc = status(upstreams)
    assert doc["object"] == "router.clusters"
    by_name = {c["name"]: c for c in doc["clusters"]}
    assert (by_name["pool"]["kind"], by_name["api"]["kind"]) == ("vllm", "frontier")
    (shown,) = by_name["pool"]["endpoints"]
    assert shown["state"] == "ejected"
    assert 0 < shown["ejected_for_s"] <= 5
    assert "s3cret" not in str(doc)  # the inproc pool's URL carries userinfo
    assert by_name["pool"]["estimates"]["ttft"]["samples"] == 1
    assert by_name["pool"]["limits"]["max_in_flight"] == pool.config.circuit_breaker.max_in_flight
    endpoint.outlier.ejected_until = 0.0
    endpoint.healthy = False
    assert status(upstreams)["clusters"][0]["endpoints"][0]["state"] == "down"
