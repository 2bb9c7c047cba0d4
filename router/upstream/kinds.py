"""The two kinds of cluster, one interface (:class:`~router.upstream.cluster.ClusterRuntime`).

- :class:`PoolCluster`: self-hosted replicas of one model (vLLM or another OpenAI-compatible server):
  health-checked and scraped, balanced by load (or affinity, or in turn), a failing replica ejected
  Envoy-style with a cap on the share of the pool out at once, several attempts per request.
- :class:`ApiCluster`: a frontier provider behind litellm, one logical endpoint: no health checks, a
  failure streak or a 429 cools the provider down, one attempt per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from router.errors import AttemptFailed
from router.policy.schema import FrontierCluster, HealthCheck, VllmCluster
from router.upstream import balance
from router.upstream.cluster import ClusterRuntime
from router.upstream.endpoints import Endpoint
from router.upstream.lease import Candidates, Pick
from router.upstream.outlier import Ejection, EjectionRule, may_eject
from router.upstream.transport.base import Transport


@dataclass
class PoolCluster(ClusterRuntime):
    config: VllmCluster
    _next: int = 0  # round-robin position

    @cached_property
    def rule(self) -> EjectionRule:
        o = self.config.outlier_detection
        return EjectionRule(o.consecutive_failures, o.base_ejection_s, o.max_ejection_s, o.probation_successes)

    @property
    def max_attempts(self) -> int:
        return self.config.max_attempts

    @property
    def takes_vllm_fields(self) -> bool:
        return self.config.kind == "vllm"  # not another OpenAI-compatible server

    @property
    def health_check(self) -> HealthCheck:
        return self.config.health_check

    @property
    def out_word(self) -> str:
        return "ejected"

    def affinity_key(self, keys: Callable[[str], bytes | None]) -> bytes | None:
        mode = self.config.load_balancing.affinity
        return None if mode == "none" else keys(mode)

    def choose(self, endpoints: list[Endpoint], affinity: bytes | None) -> Pick:
        lb = self.config.load_balancing
        endpoints = self.tier_of(endpoints)
        if len(endpoints) == 1:
            return Pick(endpoints[0])
        if lb.policy == "round_robin" and affinity is None:
            self._next += 1
            return Pick(endpoints[balance.round_robin(len(endpoints), self._next)])
        now, interval = self.clock(), self.config.health_check.metrics_interval_s
        scores = [balance.score(e.load(now, interval), lb.waiting_weight, lb.kv_cache_weight) for e in endpoints]
        i, by_affinity = balance.pick(scores, [e.url for e in endpoints], self.rng, affinity, lb.affinity_slack)
        return Pick(endpoints[i], by_affinity)

    def tier_of(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """The candidates of one tier, drawn by Envoy's priority load: a tier's healthy share is its
        candidates that are not full over all its endpoints (down, ejected, tried or full ones count
        against it). Every candidate when the cluster has one tier, or when every candidate is full."""
        last = max(e.tier for e in self.endpoints)
        if last == 0:
            return endpoints
        lb = self.config.load_balancing
        now, interval = self.clock(), self.config.health_check.metrics_interval_s
        sizes = [0] * (last + 1)
        for e in self.endpoints:
            sizes[e.tier] += 1
        free = [[] for _ in sizes]  # type: list[list[Endpoint]]
        for e in endpoints:
            load = balance.score(e.load(now, interval), lb.waiting_weight, lb.kv_cache_weight)
            if lb.endpoint_capacity is None or load < lb.endpoint_capacity:
                free[e.tier].append(e)
        shares = balance.tier_shares(
            [len(f) / n if n else 0.0 for f, n in zip(free, sizes, strict=True)], lb.overprovisioning_factor
        )
        if not any(shares):
            return endpoints
        return free[balance.pick_tier(shares, self.rng)]

    def count_failure(self, endpoint: Endpoint, exc: AttemptFailed, now: float) -> Ejection | None:
        ejected = sum(e.outlier.ejected(now) for e in self.endpoints)
        allowed = may_eject(ejected, len(self.endpoints), self.config.outlier_detection.max_ejection_percent)
        return endpoint.outlier.failure(now, self.rule, allowed, exc.kind)

    def none_available(self, left: list[Endpoint], now: float) -> Candidates:
        ejected = sum(e.outlier.ejected(now) for e in left)
        down = len(left) - ejected
        return Candidates([], f"no available endpoint ({ejected} ejected, {down} down by health checks)", down > 0)

    def readiness(self, now: float) -> dict[str, Any]:
        up = sum(e.available(now) for e in self.endpoints)
        return {"ready": up > 0, "endpoints_up": up, "endpoints": len(self.endpoints)}


@dataclass
class ApiCluster(ClusterRuntime):
    config: FrontierCluster

    @cached_property
    def rule(self) -> EjectionRule:
        c = self.config.cooldown
        return EjectionRule(c.consecutive_failures, c.base_s, c.max_s, 1)

    @property
    def max_attempts(self) -> int:
        return 1

    @property
    def takes_vllm_fields(self) -> bool:
        return False

    @property
    def health_check(self) -> None:
        return None

    @property
    def out_word(self) -> str:
        return "cooling down"

    def affinity_key(self, keys: Callable[[str], bytes | None]) -> bytes | None:
        return None

    def choose(self, endpoints: list[Endpoint], affinity: bytes | None) -> Pick:
        return Pick(endpoints[0])

    def count_failure(self, endpoint: Endpoint, exc: AttemptFailed, now: float) -> Ejection | None:
        # One logical endpoint: nothing else to keep serving, so no share cap; a 429 cools down at once.
        return endpoint.outlier.failure(now, self.rule, True, exc.kind, immediate=exc.kind == "http_429")

    def none_available(self, left: list[Endpoint], now: float) -> Candidates:
        return Candidates([], f"cooling down for {self.soonest_back() or 0:.1f} s")

    def readiness(self, now: float) -> dict[str, Any]:
        return {"ready": True, "provider": self.provider}


def cluster_runtime(
    name: str,
    config: VllmCluster | FrontierCluster,
    transport: Transport,
    endpoints: list[Endpoint],
    api_key: str | None,
    unavailable_reason: str | None = None,
) -> PoolCluster | ApiCluster:
    """The live cluster of a configuration: the one place that looks at the kind."""
    if isinstance(config, VllmCluster):
        return PoolCluster(name, config, transport, endpoints, api_key, unavailable_reason)
    return ApiCluster(name, config, transport, endpoints, api_key, unavailable_reason)
