"""One live cluster: its circuit breaker (in-flight slots, pending waiters, retry budget), its endpoints
and what it has learnt of them (ejections, latency estimates), and the :class:`Lease` a request holds on it.

A request's hold on it, from admission to its last attempt, is a :class:`~router.upstream.lease.Lease`.
A cluster is one of two kinds (:mod:`router.upstream.kinds`): a self-hosted pool of replicas, or a
frontier API behind litellm. Both are a :class:`ClusterRuntime`; what differs between them (how an
endpoint is chosen, how a failure counts, whether health checks run) is a method each kind implements.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.errors import AttemptFailed
from router.policy.schema import FrontierCluster, HealthCheck, VllmCluster
from router.upstream.endpoints import Endpoint
from router.upstream.estimate import Estimate
from router.upstream.lease import Candidates, Lease, Pick, Refusal
from router.upstream.limits import retries_allowed
from router.upstream.outlier import Ejection, EjectionRule
from router.upstream.transport.base import Transport

# How a request got no slot: the cluster was full and no one may wait, the pending queue was full too,
# or it waited as long as it could.
FULL, PENDING_FULL, PENDING_TIMEOUT = "full", "pending_full", "pending_timeout"


@dataclass
class ClusterRuntime(ABC):
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

    # -- what each kind decides ---------------------------------------------------------------
    @property
    @abstractmethod
    def rule(self) -> EjectionRule:
        """When failures take an endpoint out, and for how long (ejection, or a provider's cooldown)."""

    @property
    @abstractmethod
    def max_attempts(self) -> int:
        """Attempts of one request on this cluster (retries on other endpoints included)."""

    @property
    @abstractmethod
    def takes_vllm_fields(self) -> bool:
        """Whether requests with vLLM's extra fields may come here."""

    @property
    @abstractmethod
    def health_check(self) -> HealthCheck | None:
        """The active health checks and load scrapes of its endpoints, if it has any."""

    @property
    @abstractmethod
    def out_word(self) -> str:
        """What an endpoint taken out is, in logs: ``ejected`` or ``cooling down``."""

    @abstractmethod
    def affinity_key(self, keys: Callable[[str], bytes | None]) -> bytes | None:
        """The request's affinity key, if this cluster balances by one; ``keys`` computes it by mode."""

    @abstractmethod
    def choose(self, endpoints: list[Endpoint], affinity: bytes | None) -> Pick:
        """One of two or more available endpoints for the next attempt."""

    @abstractmethod
    def count_failure(self, endpoint: Endpoint, exc: AttemptFailed, now: float) -> Ejection | None:
        """Count a failure (one without a Retry-After) against an endpoint; the ejection, if any."""

    @abstractmethod
    def none_available(self, left: list[Endpoint], now: float) -> Candidates:
        """Why none of ``left`` (untried, serving the adapter) is available."""

    @abstractmethod
    def readiness(self, now: float) -> dict[str, Any]:
        """This cluster's part of ``/readyz``: ``ready``, and what it is judged by."""

    # -- the request's hold --------------------------------------------------------------------
    @property
    def provider(self) -> str:
        return self.transport.provider

    def semconv_model(self, model: str) -> str:
        """``gen_ai.request.model``: the model as its provider names it. A frontier cluster's litellm string
        carries the provider as a prefix (``openai/gpt-4o``), which ``gen_ai.provider.name`` says already; a
        pool's model name may hold a slash of its own (``meta-llama/Llama-3.1-8B-Instruct``)."""
        if isinstance(self.config, FrontierCluster) and "/" in model:
            return model.split("/", 1)[1]
        return model

    @property
    def upstream_model(self) -> str:
        return self.config.model

    async def acquire(
        self, adapter: str | None, tried: set[tuple[str, str]], panic: bool, deadline: float | None
    ) -> Lease | Refusal:
        """A lease on this cluster for one request (an in-flight slot, waiting as pending where the
        breaker allows), or why it gets none."""
        if self.unavailable_reason is not None:
            return Refusal("unavailable", self.unavailable_reason, public="not configured")
        found = self.candidates(adapter, tried, panic)
        if not found.endpoints:
            return Refusal("no_endpoint", found.why, back_in=self.soonest_back(), down_only=found.down_only)
        rejected = await self.admit(deadline)
        if rejected is not None:
            cb = self.config.circuit_breaker
            detail = f"{rejected.replace('_', ' ')} ({cb.max_in_flight} in flight)"
            return Refusal(rejected, detail, back_in=cb.pending_timeout_ms / 1000)
        return Lease(self, adapter, tried, panic, found)

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
    def candidates(self, adapter: str | None, tried: set[tuple[str, str]], panic: bool = False) -> Candidates:
        """Endpoints that serve ``adapter``, have not been tried, and are available; when there are none,
        why."""
        now = self.clock()
        serving = [e for e in self.endpoints if e.serves(adapter) and (self.name, e.url) not in tried]
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
        return self.none_available(serving, now)

    def pick(
        self,
        adapter: str | None,
        affinity: bytes | None,
        tried: set[tuple[str, str]],
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
        return self.choose(endpoints, affinity)

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
        return self.count_failure(endpoint, exc, now)

    def soonest_back(self) -> float | None:
        """Seconds until the first ejected or cooling endpoint is re-admitted (for ``Retry-After``)."""
        now = self.clock()
        waits = [e.outlier.remaining(now) for e in self.endpoints if e.outlier.ejected(now)]
        return min(waits) if waits else None
