"""Active health checks of vLLM endpoints (``GET /health``) and scrapes of their ``/metrics``.

One loop for the whole proxy ticks a few times a second and starts, for each endpoint whose check or
scrape is due (per its cluster's ``health_check`` intervals), a probe that runs on its own; a slow
endpoint never delays the others. An endpoint is marked down after ``unhealthy_threshold`` failed
probes in a row and up again after ``healthy_threshold`` passed ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from router.policy.schema import HealthCheck
from router.telemetry.scrape import vllm_load
from router.upstream.cluster import ClusterRuntime
from router.upstream.endpoints import Endpoint
from router.upstream.outlier import EjectionRule
from router.upstream.upstreams import Upstreams

log = logging.getLogger(__name__)

TICK_S = 0.25


def root_url(endpoint: Endpoint, path: str) -> str:
    base = endpoint.url
    return (base[: -len("/v1")] if base.endswith("/v1") else base) + path


def health_url(endpoint: Endpoint, path: str = "/health") -> str:
    return root_url(endpoint, path)


async def probe(
    session: aiohttp.ClientSession, endpoint: Endpoint, timeout_s: float = 2.0, path: str = "/health"
) -> bool:
    try:
        async with session.get(health_url(endpoint, path), timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return resp.status == 200
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


def apply_probe(
    cluster: str,
    endpoint: Endpoint,
    ok: bool,
    hc: HealthCheck,
    rule: EjectionRule | None = None,
    now: float = 0.0,
) -> None:
    """Count a probe result; flip the endpoint's state after the configured number in a row. A healthy
    endpoint that traffic had ejected is put back on probation (``rule``: the cluster's ejection rule)."""
    if ok:
        endpoint.check_failures = 0
        endpoint.check_successes += 1
        if not endpoint.healthy and endpoint.check_successes >= hc.healthy_threshold:
            endpoint.healthy = True
            log.warning("endpoint %s of cluster %s is up again (health check)", endpoint.label, cluster)
        if endpoint.healthy and rule is not None and endpoint.outlier.lift(now, rule):
            log.warning("endpoint %s of cluster %s: ejection lifted by a passing health check", endpoint.label, cluster)
    else:
        endpoint.check_successes = 0
        endpoint.check_failures += 1
        if endpoint.healthy and endpoint.check_failures >= hc.unhealthy_threshold:
            endpoint.healthy = False
            log.warning("endpoint %s of cluster %s is DOWN (health check)", endpoint.label, cluster)


class PoolMeter(Protocol):
    """Where the pools' own figures go (the ledger): tokens their counters say they processed, and
    seconds their replicas were up (what the pool is paid for), by tier."""

    def served(self, cluster: str, prompt_tokens: int, generation_tokens: int) -> None: ...

    def up(self, cluster: str, tier: str, seconds: float) -> None: ...


def uptime(upstreams: Upstreams, seconds: float, meter: PoolMeter) -> None:
    """Count ``seconds`` of up time for every pool replica the health checks find up (every replica of a
    pool without health checks), by tier: a reclaimed spot replica or one scaled away costs nothing."""
    for c in upstreams.clusters.values():
        hc = c.health_check
        if hc is None:  # a frontier API: paid by the token
            continue
        up: dict[str, int] = {}
        for e in c.endpoints:
            if e.healthy or not hc.enabled:
                up[e.tier_name] = up.get(e.tier_name, 0) + 1
        for tier, n in up.items():
            meter.up(c.name, tier, n * seconds)


Served = Callable[[int, int], None]  # prompt and generation tokens a scrape found processed since the last


def counted(before: float | None, now: float | None, first: bool = False) -> int:
    """A counter's increase between two scrapes: none at the first scrape (it only sets the mark); all of
    it when it was not on the page before (a new series starts at 0) or went back (the engine restarted)."""
    if now is None or first:
        return 0
    if before is None:
        return int(now)
    return int(now - before) if now >= before else int(now)


async def scrape(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    hc: HealthCheck,
    now: Callable[[], float],
    served: Served | None = None,
) -> None:
    try:
        timeout = aiohttp.ClientTimeout(total=hc.timeout_s)
        async with session.get(root_url(endpoint, hc.metrics_path), timeout=timeout) as resp:
            if resp.status != 200:
                return
            page = await resp.read()
    except (TimeoutError, aiohttp.ClientError, OSError):
        return
    load = vllm_load(page)
    s = endpoint.scraped
    if served is not None:
        first = s.at == 0
        served(
            counted(s.prompt_tokens, load.prompt_tokens, first),
            counted(s.generation_tokens, load.generation_tokens, first),
        )
    s.running, s.waiting, s.kv, s.at = load.running, load.waiting, load.kv, now()
    s.prompt_tokens, s.generation_tokens = load.prompt_tokens, load.generation_tokens


@dataclass
class HealthChecker:
    session: aiohttp.ClientSession
    clock: Callable[[], float] = time.monotonic
    # Told what the pools served by their own counters and how long their replicas were up (the ledger).
    meter: PoolMeter | None = None
    _last_tick: float | None = None
    _next: dict[tuple[str, str, str], float] = field(default_factory=dict)
    _running: set[asyncio.Task[None]] = field(default_factory=set)
    _busy: set[tuple[str, str, str]] = field(default_factory=set)

    async def check_all(self, upstreams: Upstreams) -> None:
        """Probe and scrape every vLLM endpoint once, now (start-up), and wait for the answers. An endpoint
        starts as its first probe finds it (no threshold: nothing is known of it before)."""
        self._last_tick = self.clock()  # up time counts from here
        jobs = []
        for c in upstreams.clusters.values():
            hc = c.health_check
            if hc is None:
                continue
            for e in c.endpoints:
                if hc.enabled:
                    jobs.append(self._health(c, e, hc, first=True))
                if hc.metrics_interval_s:
                    jobs.append(scrape(self.session, e, hc, self.clock, self._served(c.name)))
        await asyncio.gather(*jobs)

    def tick(self, upstreams: Upstreams) -> None:
        now = self.clock()
        if self.meter is not None and self._last_tick is not None:
            uptime(upstreams, now - self._last_tick, self.meter)
        self._last_tick = now
        for c in upstreams.clusters.values():
            hc = c.health_check
            if hc is None:
                continue
            for e in c.endpoints:
                if hc.enabled and self._due(("health", c.name, e.url), now, hc.interval_s):
                    self._run(("health", c.name, e.url), self._health(c, e, hc))
                if hc.metrics_interval_s and self._due(("metrics", c.name, e.url), now, hc.metrics_interval_s):
                    self._run(("metrics", c.name, e.url), scrape(self.session, e, hc, self.clock, self._served(c.name)))

    def _served(self, cluster: str) -> Served | None:
        meter = self.meter
        if meter is None:
            return None
        return lambda prompt, generation: meter.served(cluster, prompt, generation)

    def _due(self, key: tuple[str, str, str], now: float, interval: float) -> bool:
        """Whether a probe is due (and none of the same kind for the endpoint is still running)."""
        if key in self._busy or now < self._next.get(key, 0.0):
            return False
        self._next[key] = now + interval
        return True

    def _run(self, key: tuple[str, str, str], job: Coroutine[Any, Any, None]) -> None:
        self._busy.add(key)
        task = asyncio.ensure_future(job)
        self._running.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._running.discard(t)
            self._busy.discard(key)

        task.add_done_callback(done)

    async def _health(self, cluster: ClusterRuntime, endpoint: Endpoint, hc: HealthCheck, first: bool = False) -> None:
        ok = await probe(self.session, endpoint, hc.timeout_s, hc.path)
        if first:
            endpoint.healthy = ok
        apply_probe(cluster.name, endpoint, ok, hc, cluster.rule, cluster.clock())

    async def run(self, upstreams: Callable[[], Upstreams]) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.tick(upstreams())

    async def stop(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
