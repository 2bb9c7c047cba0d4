"""A router state over in-process mock transports: pipeline, attempts and accounting without sockets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from router.accounting.prices import price_book
from router.policy.compile import Policy, compile_texts
from router.policy.schema import VllmCluster
from router.serving import RouterState, Serving
from router.settings import Settings
from router.telemetry.metrics import Metrics
from router.telemetry.tracing import build_tracing
from router.tenancy.keys import KeyStore
from router.upstream.cluster import ClusterRuntime
from router.upstream.endpoints import Endpoint
from router.upstream.kinds import cluster_runtime
from router.upstream.transport.mock import MockTransport
from router.upstream.upstreams import Upstreams

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: ["http://user:s3cret@pool.internal:8000/v1"]
    model: m
    default_max_tokens: 64
    timeouts: {connect_s: 1, first_byte_s: 5, total_s: 10}
    fallbacks: [api]
  api:
    kind: frontier
    model: openai/m
    price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
    timeouts: {connect_s: 1, first_byte_s: 5, total_s: 10}
models:
  pool: {cluster: pool}
  api: {cluster: api}
auth: {anonymous: true}
costs: {baseline_model: openai/gpt-4o, baseline_price: {input_usd_per_mtok: 2.5, output_usd_per_mtok: 10.0}}
"""


def inproc_clusters(policy: Policy, transports: Mapping[str, MockTransport]) -> dict[str, ClusterRuntime]:
    """The policy's clusters over ``transports`` (by cluster name): a pool has the endpoints its policy
    names (with their adapters), an API one endpoint at ``http://<name>.internal/v1``."""
    clusters: dict[str, ClusterRuntime] = {}
    for name, cfg in policy.clusters.items():
        specs = cfg.endpoint_specs() if isinstance(cfg, VllmCluster) else []
        endpoints = [
            Endpoint.parse(s.url, frozenset(s.adapters or ()), tier=cfg.tier_of(s))
            for s in specs
            if isinstance(cfg, VllmCluster)
        ]
        endpoints = endpoints or [Endpoint.parse(f"http://{name}.internal/v1")]
        runtime = cluster_runtime(name, cfg, transports[name], endpoints, api_key=None)
        runtime.default_max_tokens = policy.output_cap(name)
        clusters[name] = runtime
    return clusters


def inproc_state(transports: Mapping[str, MockTransport], policy_text: str = POLICY) -> RouterState:
    """A state whose clusters call ``transports`` (by cluster name), see :func:`inproc_clusters`."""
    policy = compile_texts([("p.yaml", policy_text)], env={})
    clusters = inproc_clusters(policy, transports)
    serving = Serving(policy, Upstreams(clusters), price_book(policy), KeyStore({}))
    return RouterState(
        settings=Settings(policies=Path("p.yaml")), metrics=Metrics(), tracing=build_tracing({}), serving=serving
    )


def settled(upstreams: Upstreams) -> None:
    """Every slot given back: no request in flight, pending or retrying on any cluster or endpoint."""
    for c in upstreams.clusters.values():
        assert (c.in_flight, c.retries, c.pending) == (0, 0, 0), c.name
        assert all(e.in_flight == 0 for e in c.endpoints), c.name
