"""Active health checks of vLLM endpoints (``GET /health`` at the server root)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from router.policy.schema import VllmCluster
from router.runtime.clusters import Endpoint, Upstreams
from router.telemetry.metrics import Metrics

log = logging.getLogger(__name__)


def health_url(endpoint: Endpoint) -> str:
    base = endpoint.url
    return (base[: -len("/v1")] if base.endswith("/v1") else base) + "/health"


async def probe(session: aiohttp.ClientSession, endpoint: Endpoint, timeout_s: float = 2.0) -> bool:
    try:
        async with session.get(health_url(endpoint), timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return resp.status == 200
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


async def check_all(session: aiohttp.ClientSession, upstreams: Upstreams, metrics: Metrics) -> None:
    jobs: list[tuple[str, Endpoint]] = [
        (name, e) for name, c in upstreams.clusters.items() if isinstance(c.config, VllmCluster) for e in c.endpoints
    ]
    results = await asyncio.gather(*(probe(session, e) for _, e in jobs))
    for (name, endpoint), ok in zip(jobs, results, strict=True):
        if ok != endpoint.healthy:
            log.warning("endpoint %s of cluster %s is now %s", endpoint.url, name, "up" if ok else "DOWN")
        endpoint.healthy = ok
        metrics.endpoint_up.labels(name, endpoint.url).set(1 if ok else 0)
