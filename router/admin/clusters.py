"""The admin view of the live clusters (``GET /v1/admin/clusters``, ``router status``)."""

from __future__ import annotations

from typing import Any

from router.upstream.cluster import ClusterRuntime
from router.upstream.endpoints import Endpoint
from router.upstream.estimate import Estimate
from router.upstream.upstreams import Upstreams


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def _estimate(e: Estimate, now: float) -> dict[str, Any]:
    return {"ewma_ms": _ms(e.ewma), "p95_ms": _ms(e.p95(now)), "samples": e.count(now)}


def _endpoint(e: Endpoint, now: float) -> dict[str, Any]:
    o, s = e.outlier, e.scraped
    if o.ejected(now):
        state = "ejected"
    elif not e.healthy:
        state = "down"
    elif o.probation:
        state = "probation"
    else:
        state = "up"
    return {
        "url": e.label,
        "tier": e.tier_name,
        "state": state,
        "healthy": e.healthy,
        "ejected": o.ejected(now),
        "ejected_for_s": round(o.remaining(now), 2),
        "ejections": o.total_ejections,
        "ejection_multiplier": o.ejections,
        "last_ejection_reason": o.last_reason or None,
        "consecutive_failures": o.consecutive,
        "probation_successes_needed": o.probation,
        "in_flight": e.in_flight,
        "attempts": e.attempts,
        "failures": e.failures,
        "last_error": e.last_error or None,
        "estimates": {"ttft": _estimate(e.ttft, now), "latency": _estimate(e.latency, now)},
        "adapters": sorted(e.adapters),
        "emulated": e.emulated,
        "scraped": None
        if not s.at
        else {"running": s.running, "waiting": s.waiting, "kv_cache_usage": s.kv, "age_s": round(now - s.at, 2)},
    }


def cluster_status(c: ClusterRuntime) -> dict[str, Any]:
    now = c.clock()
    cb = c.config.circuit_breaker
    return {
        "name": c.name,
        "kind": c.config.kind,
        "provider": c.provider,
        "model": c.upstream_model,
        "available": c.unavailable_reason is None,
        "unavailable_reason": c.unavailable_reason,
        "in_flight": c.in_flight,
        "pending": c.pending,
        "retries_in_flight": c.retries,
        "limits": {
            "max_in_flight": cb.max_in_flight,
            "max_pending": cb.max_pending,
            "pending_timeout_ms": cb.pending_timeout_ms,
            "max_retries": cb.max_retries,
            "retry_budget_percent": cb.retry_budget_percent,
        },
        "estimates": {
            "ttft": _estimate(c.ttft, now),
            "latency": _estimate(c.latency, now),
            "queue": _estimate(c.queue, now),
        },
        "endpoints": [_endpoint(e, now) for e in c.endpoints],
    }


def status(upstreams: Upstreams) -> dict[str, Any]:
    return {"object": "router.clusters", "clusters": [cluster_status(c) for c in upstreams.clusters.values()]}
