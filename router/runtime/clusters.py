"""Live clusters: endpoints, transports, in-flight limits and health, built from a policy.

A reload builds a new :class:`Upstreams`; clusters whose configuration did not change are carried
over as the same objects, so their in-flight counts and health survive the reload.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from router.balance import attempt_order
from router.policy.compile import Policy
from router.policy.schema import EMULATED, FrontierCluster, VllmCluster
from router.telemetry.names import PROVIDER_VLLM
from router.transport.base import Transport
from router.transport.frontier import FrontierTransport, import_litellm
from router.transport.vllm import VllmTransport

log = logging.getLogger(__name__)


@dataclass
class Endpoint:
    url: str
    host: str
    port: int
    healthy: bool = True
    emulated: bool = False

    @classmethod
    def parse(cls, url: str, emulated: bool = False) -> Endpoint:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(url=url, host=parts.hostname or "", port=port, emulated=emulated)


@dataclass
class ClusterRuntime:
    name: str
    config: VllmCluster | FrontierCluster
    transport: Transport
    endpoints: list[Endpoint]
    api_key: str | None
    unavailable_reason: str | None = None
    in_flight: int = 0
    _next: int = field(default=0, repr=False)

    @property
    def provider(self) -> str:
        return self.transport.provider

    @property
    def upstream_model(self) -> str:
        return self.config.model

    def try_acquire(self) -> bool:
        if self.in_flight >= self.config.max_concurrency:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    def endpoint_order(self, limit: int) -> list[Endpoint]:
        order = attempt_order([e.healthy for e in self.endpoints], self._next, limit)
        self._next = (self._next + 1) % max(1, len(self.endpoints))
        return [self.endpoints[i] for i in order]


@dataclass
class EmulatedUpstreams:
    """Where emulated upstreams answer (filled by :mod:`router.runtime.devstack`), keyed by cluster."""

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

    def in_flight_readers(self) -> dict[str, Callable[[], float]]:
        def reader(cluster: ClusterRuntime) -> Callable[[], float]:
            return lambda: float(cluster.in_flight)

        return {name: reader(c) for name, c in self.clusters.items()}


def needs_litellm(policy: Policy) -> bool:
    return any(isinstance(c, FrontierCluster) for c in policy.clusters.values())


def build_upstreams(
    policy: Policy,
    session: aiohttp.ClientSession,
    emulated: EmulatedUpstreams,
    previous: Upstreams | None = None,
    env: Mapping[str, str] | None = None,
) -> Upstreams:
    env = os.environ if env is None else env
    vllm_transport = VllmTransport(session)
    litellm = import_litellm() if needs_litellm(policy) else None
    out: dict[str, ClusterRuntime] = {}
    for name, cfg in policy.clusters.items():
        old = previous.get(name) if previous else None
        if old is not None and old.config == cfg:
            out[name] = old
            continue
        if isinstance(cfg, VllmCluster):
            out[name] = _vllm_runtime(name, cfg, vllm_transport, emulated, env)
        else:
            out[name] = _frontier_runtime(name, cfg, litellm, emulated, env)
        if out[name].unavailable_reason:
            log.warning("cluster %s is unavailable: %s", name, out[name].unavailable_reason)
    return Upstreams(out)


def _vllm_runtime(
    name: str, cfg: VllmCluster, transport: VllmTransport, emulated: EmulatedUpstreams, env: Mapping[str, str]
) -> ClusterRuntime:
    endpoints = [Endpoint.parse(u) for u in cfg.endpoints if u != EMULATED]
    endpoints += [Endpoint.parse(u, emulated=True) for u in emulated.vllm.get(name, [])]
    reason = None
    if not endpoints:
        reason = "no endpoints (only `emulated` ones, and --emulate-missing is off)"
    api_key = env.get(cfg.api_key_env) if cfg.api_key_env else None
    return ClusterRuntime(name, cfg, transport, endpoints, api_key, reason)


def _frontier_runtime(
    name: str, cfg: FrontierCluster, litellm: Any, emulated: EmulatedUpstreams, env: Mapping[str, str]
) -> ClusterRuntime:
    base = emulated.frontier.get(name)
    if base is not None:
        # The emulator speaks the OpenAI API whatever the real provider is.
        served = cfg.model.split("/", 1)[-1]
        transport = FrontierTransport(litellm, f"openai/{served}", base)
        transport.provider = provider_of_real(litellm, cfg.model)
        return ClusterRuntime(name, cfg, transport, [Endpoint.parse(base, emulated=True)], "emulated")
    key = frontier_key(cfg, env, litellm)
    transport = FrontierTransport(litellm, cfg.model, cfg.api_base)
    endpoint = (
        Endpoint.parse(cfg.api_base) if cfg.api_base else Endpoint(url=cfg.model, host=transport.provider, port=443)
    )
    reason = None if key is not None else f"no API key ({cfg.api_key_env or 'provider default variable'} is not set)"
    return ClusterRuntime(name, cfg, transport, [endpoint], key or None, reason)


def provider_of_real(litellm: Any, model: str) -> str:
    return FrontierTransport(litellm, model, None).provider if litellm is not None else PROVIDER_VLLM
