"""The clusters of one policy, ready to call (:class:`Upstreams`), and how a reload builds them.

A reload builds a new :class:`Upstreams`. A cluster whose configuration did not change is carried over
as the same object; otherwise its endpoints are, by URL, so their health, ejections, scraped load and
in-flight counts survive the reload either way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from router.policy.compile import Policy
from router.policy.schema import EMULATED, FrontierCluster, VllmCluster
from router.telemetry.gauges import ClusterGauges, EndpointGauges
from router.telemetry.names import PROVIDER_VLLM
from router.upstream.cluster import ClusterRuntime
from router.upstream.endpoints import Endpoint
from router.upstream.kinds import ApiCluster, PoolCluster
from router.upstream.transport.background import BackgroundLoop
from router.upstream.transport.frontier import FrontierTransport, import_litellm
from router.upstream.transport.vllm import VllmTransport

log = logging.getLogger(__name__)


@dataclass
class EmulatedUpstreams:
    """Where emulated upstreams answer (filled by :mod:`router.emulator.devstack`), keyed by cluster."""

    vllm: dict[str, list[str]] = field(default_factory=dict)
    frontier: dict[str, str] = field(default_factory=dict)


def frontier_key(cfg: FrontierCluster, env: Mapping[str, str], litellm: Any) -> str | None:
    """The API key for a frontier cluster, or None when it is not configured."""
    if cfg.api_key_env is not None:
        return env.get(cfg.api_key_env) or None
    try:
        info = litellm.validate_environment(model=cfg.model)
    except Exception:  # noqa: BLE001 - litellm raises many types for unknown model strings
        return None
    return "" if info.get("keys_in_environment") else None


class Upstreams:
    """The clusters of one policy, ready to call."""

    def __init__(self, clusters: dict[str, ClusterRuntime]) -> None:
        self.clusters = clusters

    def get(self, name: str) -> ClusterRuntime | None:
        return self.clusters.get(name)

    def usable(self) -> bool:
        return any(c.unavailable_reason is None for c in self.clusters.values())

    def gauges(self) -> list[ClusterGauges]:
        """The live state for ``/metrics`` (read at scrape time)."""
        out = []
        for c in self.clusters.values():
            now = c.clock()
            estimates = {
                (measure, stat): value
                for measure, est in (("ttft", c.ttft), ("latency", c.latency), ("queue", c.queue))
                for stat, value in (("ewma", est.ewma), ("p95", est.p95(now)))
            }
            endpoints = [
                EndpointGauges(e.label, e.healthy, e.outlier.ejected(now), e.in_flight, estimates_of(e, now))
                for e in c.endpoints
            ]
            out.append(ClusterGauges(c.name, c.in_flight, c.pending, estimates, endpoints))
        return out


def estimates_of(e: Endpoint, now: float) -> dict[tuple[str, str], float | None]:
    """An endpoint's latency estimates by (measure, stat)."""
    return {
        (measure, stat): value
        for measure, est in (("ttft", e.ttft), ("latency", e.latency))
        for stat, value in (("ewma", est.ewma), ("p95", est.p95(now)))
    }


def needs_litellm(policy: Policy) -> bool:
    return any(c.kind == "frontier" for c in policy.clusters.values())


def build_upstreams(
    policy: Policy,
    session: aiohttp.ClientSession,
    emulated: EmulatedUpstreams,
    previous: Upstreams | None = None,
    env: Mapping[str, str] | None = None,
    background: BackgroundLoop | None = None,
) -> Upstreams:
    """The clusters of ``policy``. Frontier clusters run litellm on ``background`` (started here when the
    policy has any), off the serving loop."""
    env = os.environ if env is None else env
    vllm_transport = VllmTransport(session)
    litellm = import_litellm() if needs_litellm(policy) else None
    if litellm is not None and background is not None:
        background.start()
    out: dict[str, ClusterRuntime] = {}
    for name, cfg in policy.clusters.items():
        old = previous.get(name) if previous else None
        cap = policy.output_cap(name)
        if old is not None and old.config == cfg and old.default_max_tokens == cap:
            out[name] = old
            continue
        if isinstance(cfg, VllmCluster):
            out[name] = _vllm_runtime(name, cfg, vllm_transport, emulated, env, old)
        else:
            out[name] = _frontier_runtime(name, cfg, litellm, emulated, env, background)
        out[name].default_max_tokens = cap
        if out[name].unavailable_reason:
            log.warning("cluster %s is unavailable: %s", name, out[name].unavailable_reason)
    return Upstreams(out)


def _vllm_runtime(
    name: str,
    cfg: VllmCluster,
    transport: VllmTransport,
    emulated: EmulatedUpstreams,
    env: Mapping[str, str],
    old: ClusterRuntime | None,
) -> PoolCluster:
    known = {e.url: e for e in old.endpoints} if old is not None else {}
    specs = cfg.endpoint_specs()
    emulated_urls = iter(emulated.vllm.get(name, []))
    endpoints: list[Endpoint] = []
    for spec in specs:
        adapters = frozenset(spec.adapters or ())
        if spec.url == EMULATED:
            url = next(emulated_urls, None)
            if url is None:
                continue
            endpoint = Endpoint.parse(url, adapters, emulated=True, tier=cfg.tier_of(spec))
        else:
            endpoint = Endpoint.parse(spec.url, adapters, tier=cfg.tier_of(spec))
        same = known.get(endpoint.url)
        if same is not None:  # the same replica: keep its health, ejections and in-flight count
            same.adapters, same.tier, same.tier_name = adapters, endpoint.tier, endpoint.tier_name
            endpoint = same
        endpoints.append(endpoint)
    reason = None
    if not endpoints:
        reason = "no endpoints (only `emulated` ones, and --emulate-missing is off)"
    api_key = env.get(cfg.api_key_env) if cfg.api_key_env else None
    runtime = PoolCluster(name, cfg, transport, endpoints, api_key, reason)
    if old is not None:  # latency evidence is about the replicas, which stayed
        runtime.ttft, runtime.latency, runtime.queue = old.ttft, old.latency, old.queue
    return runtime


def _frontier_runtime(
    name: str,
    cfg: FrontierCluster,
    litellm: Any,
    emulated: EmulatedUpstreams,
    env: Mapping[str, str],
    background: BackgroundLoop | None,
) -> ApiCluster:
    base = emulated.frontier.get(name)
    if base is not None:
        # The emulator speaks the OpenAI API whatever the real provider is.
        served = cfg.model.split("/", 1)[-1]
        transport = FrontierTransport(litellm, f"openai/{served}", base, background)
        transport.provider = provider_of_real(litellm, cfg.model)
        return ApiCluster(name, cfg, transport, [Endpoint.parse(base, emulated=True)], "emulated")
    key = frontier_key(cfg, env, litellm)
    transport = FrontierTransport(litellm, cfg.model, cfg.api_base, background)
    endpoint = (
        Endpoint.parse(cfg.api_base) if cfg.api_base else Endpoint(url=cfg.model, host=transport.provider, port=443)
    )
    reason = None if key is not None else f"no API key ({cfg.api_key_env or 'provider default variable'} is not set)"
    return ApiCluster(name, cfg, transport, [endpoint], key or None, reason)


def provider_of_real(litellm: Any, model: str) -> str:
    return FrontierTransport(litellm, model, None).provider if litellm is not None else PROVIDER_VLLM
