"""Live clusters: endpoints, transports, circuit breakers, outlier ejection and latency estimates.

A reload builds a new :class:`Upstreams`. A cluster whose configuration did not change is carried over
as the same object; otherwise its endpoints are, by URL, so their health, ejections, scraped load and
in-flight counts survive the reload either way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from router.errors import AttemptFailed
from router.policy.compile import Policy
from router.policy.schema import EMULATED, FrontierCluster, VllmCluster
from router.runtime.endpoints import Endpoint
from router.telemetry.metrics import ClusterGauges, EndpointGauges
from router.telemetry.names import PROVIDER_VLLM
from router.transport.background import BackgroundLoop
from router.transport.base import Transport
from router.transport.frontier import FrontierTransport, import_litellm
from router.transport.vllm import VllmTransport
from router.upstream import balance
from router.upstream.estimate import Estimate
from router.upstream.limits import retries_allowed
from router.upstream.outlier import Ejection, EjectionRule, may_eject

log = logging.getLogger(__name__)

# How a request got no slot: the cluster was full and no one may wait, the pending queue was full too,
# or it waited as long as it could.
FULL, PENDING_FULL, PENDING_TIMEOUT = "full", "pending_full", "pending_timeout"


def _rule(cfg: VllmCluster | FrontierCluster) -> EjectionRule:
    if isinstance(cfg, VllmCluster):
        o = cfg.outlier_detection
        return EjectionRule(o.consecutive_failures, o.base_ejection_s, o.max_ejection_s, o.probation_successes)
    c = cfg.cooldown
    return EjectionRule(c.consecutive_failures, c.base_s, c.max_s, 1)


@dataclass(frozen=True, slots=True)
class Candidates:
    endpoints: list[Endpoint]
    why: str = ""  # when there are none
    down_only: bool = False  # some are left out only because health checks call them down (panic may try)


@dataclass(frozen=True, slots=True)
class Pick:
    endpoint: Endpoint | None
    affinity: bool = False
    why_none: str = ""


@dataclass
class ClusterRuntime:
    name: str
    config: VllmCluster | FrontierCluster
    transport: Transport
    endpoints: list[Endpoint]
    api_key: str | None
    unavailable_reason: str | None = None
    # The output cap sent when a request sets none (the policy's, see Policy.output_cap).
    default_max_tokens: int = 4096
    in_flight: int = 0
    pending: int = 0
    retries: int = 0
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=lambda: random.Random(os.urandom(8)))
    ttft: Estimate = field(default_factory=Estimate)
    latency: Estimate = field(default_factory=Estimate)
    queue: Estimate = field(default_factory=Estimate)
    _waiters: deque[asyncio.Future[None]] = field(default_factory=deque, repr=False)
    _next: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.rule = _rule(self.config)

    @property
    def provider(self) -> str:
        return self.transport.provider

    @property
    def upstream_model(self) -> str:
        return self.config.model

    @property
    def is_vllm(self) -> bool:
        return isinstance(self.config, VllmCluster)

    @property
    def max_attempts(self) -> int:
        return self.config.max_attempts if isinstance(self.config, VllmCluster) else 1

    # -- circuit breaker ----------------------------------------------------------------------
    def try_acquire(self) -> bool:
        if self.in_flight >= self.config.circuit_breaker.max_in_flight:
            return False
        self.in_flight += 1
        return True

    async def admit(self, deadline: float | None) -> str | None:
        """Take an in-flight slot, waiting as pending when the breaker allows; None, or why not."""
        if self.try_acquire():
            return None
        cb = self.config.circuit_breaker
        if cb.max_pending == 0:
            return FULL
        if self.pending >= cb.max_pending:
            return PENDING_FULL
        wait = cb.pending_timeout_ms / 1000
        if deadline is not None:
            wait = min(wait, deadline - self.clock())
        if wait <= 0:
            return PENDING_TIMEOUT
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.pending += 1
        started = self.clock()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), wait)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():  # the slot arrived as the wait ran out: keep it
                return None
            waiter.cancel()
            return PENDING_TIMEOUT
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled: give it on
            waiter.cancel()
            raise
        finally:
            self.pending -= 1
            self.queue.observe(self.clock(), self.clock() - started)
        return None  # the releasing request handed its slot over: in_flight already counts it

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # hand the slot over; in_flight stays
                return
        self.in_flight -= 1

    def try_retry(self) -> bool:
        cb = self.config.circuit_breaker
        allowed = retries_allowed(self.in_flight, cb.max_retries, cb.retry_budget_percent, cb.min_retry_concurrency)
        if self.retries >= allowed:
            return False
        self.retries += 1
        return True

    def end_retry(self) -> None:
        self.retries -= 1

    # -- endpoints ----------------------------------------------------------------------------
    def candidates(self, adapter: str | None, tried: set[str], panic: bool = False) -> Candidates:
        """Endpoints that serve ``adapter``, have not been tried, and are available; when there are none,
        why."""
        now = self.clock()
        serving = [e for e in self.endpoints if e.serves(adapter) and e.url not in tried]
        for e in serving:
            e.outlier.readmit(now, self.rule)
        # Panic (nothing in the whole chain was available): also endpoints that only the health checks
        # call down, unless real traffic has failed there since its last success.
        ok = [
            e
            for e in serving
            if e.available(now) or (panic and not e.outlier.ejected(now) and e.outlier.consecutive == 0)
        ]
        if ok:
            return Candidates(ok)
        if not serving:
            why = f"no untried endpoint serves adapter {adapter!r}" if adapter else "every endpoint tried"
            return Candidates([], why)
        ejected = sum(e.outlier.ejected(now) for e in serving)
        down = len(serving) - ejected
        if not self.is_vllm:
            return Candidates([], f"cooling down for {self.soonest_back() or 0:.1f} s")
        return Candidates([], f"no available endpoint ({ejected} ejected, {down} down by health checks)", down > 0)

    def pick(
        self,
        adapter: str | None,
        affinity: bytes | None,
        tried: set[str],
        panic: bool = False,
        found: Candidates | None = None,
    ) -> Pick:
        """The endpoint for the next attempt; ``found``: the candidates, if just computed for this request."""
        found = found if found is not None else self.candidates(adapter, tried, panic)
        endpoints = found.endpoints
        if not endpoints:
            return Pick(None, why_none=found.why)
        if len(endpoints) == 1:
            return Pick(endpoints[0])
        if not isinstance(self.config, VllmCluster):
            return Pick(endpoints[0])
        lb = self.config.load_balancing
        if lb.policy == "round_robin" and affinity is None:
            self._next += 1
            return Pick(endpoints[balance.round_robin(len(endpoints), self._next)])
        now, interval = self.clock(), self.config.health_check.metrics_interval_s
        scores = [balance.score(e.load(now, interval), lb.waiting_weight, lb.kv_cache_weight) for e in endpoints]
        i, by_affinity = balance.pick(scores, [e.url for e in endpoints], self.rng, affinity, lb.affinity_slack)
        return Pick(endpoints[i], by_affinity)

    def record_success(self, endpoint: Endpoint) -> None:
        endpoint.outlier.success(self.clock(), self.rule)

    def record_failure(self, endpoint: Endpoint, exc: AttemptFailed) -> Ejection | None:
        """Count a failed attempt against its endpoint; eject (or cool down) it when the rule says so."""
        now = self.clock()
        endpoint.failures += 1
        endpoint.last_error = endpoint.shown(exc.message)[:200]
        if exc.retry_after_s:  # the upstream said when to come back (a 429 or 503 with Retry-After)
            held = endpoint.outlier.hold(now, exc.retry_after_s, self.rule, f"{exc.kind} with Retry-After")
            if held is not None:
                return held
        if not self.is_vllm:
            return endpoint.outlier.failure(now, self.rule, True, exc.kind, immediate=exc.kind == "http_429")
        assert isinstance(self.config, VllmCluster)
        ejected = sum(e.outlier.ejected(now) for e in self.endpoints)
        allowed = may_eject(ejected, len(self.endpoints), self.config.outlier_detection.max_ejection_percent)
        return endpoint.outlier.failure(now, self.rule, allowed, exc.kind)

    def soonest_back(self) -> float | None:
        """Seconds until the first ejected or cooling endpoint is re-admitted (for ``Retry-After``)."""
        now = self.clock()
        waits = [e.outlier.remaining(now) for e in self.endpoints if e.outlier.ejected(now)]
        return min(waits) if waits else None


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
            endpoints = [EndpointGauges(e.label, e.healthy, e.outlier.ejected(now), e.in_flight) for e in c.endpoints]
            out.append(ClusterGauges(c.name, c.in_flight, c.pending, estimates, endpoints))
        return out


def needs_litellm(policy: Policy) -> bool:
    return any(isinstance(c, FrontierCluster) for c in policy.clusters.values())


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
) -> ClusterRuntime:
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
            endpoint = Endpoint.parse(url, adapters, emulated=True)
        else:
            endpoint = Endpoint.parse(spec.url, adapters)
        same = known.get(endpoint.url)
        if same is not None:  # the same replica: keep its health, ejections and in-flight count
            same.adapters = adapters
            endpoint = same
        endpoints.append(endpoint)
    reason = None
    if not endpoints:
        reason = "no endpoints (only `emulated` ones, and --emulate-missing is off)"
    api_key = env.get(cfg.api_key_env) if cfg.api_key_env else None
    runtime = ClusterRuntime(name, cfg, transport, endpoints, api_key, reason)
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
) -> ClusterRuntime:
    base = emulated.frontier.get(name)
    if base is not None:
        # The emulator speaks the OpenAI API whatever the real provider is.
        served = cfg.model.split("/", 1)[-1]
        transport = FrontierTransport(litellm, f"openai/{served}", base, background)
        transport.provider = provider_of_real(litellm, cfg.model)
        return ClusterRuntime(name, cfg, transport, [Endpoint.parse(base, emulated=True)], "emulated")
    key = frontier_key(cfg, env, litellm)
    transport = FrontierTransport(litellm, cfg.model, cfg.api_base, background)
    endpoint = (
        Endpoint.parse(cfg.api_base) if cfg.api_base else Endpoint(url=cfg.model, host=transport.provider, port=443)
    )
    reason = None if key is not None else f"no API key ({cfg.api_key_env or 'provider default variable'} is not set)"
    return ClusterRuntime(name, cfg, transport, [endpoint], key or None, reason)


def provider_of_real(litellm: Any, model: str) -> str:
    return FrontierTransport(litellm, model, None).provider if litellm is not None else PROVIDER_VLLM
