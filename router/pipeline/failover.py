"""Failover across a decision's targets: the route's target, then its fallbacks, each held by a
:class:`~router.upstream.cluster.Lease` for as many attempts as its cluster allows; when nothing at all
could be tried because health checks call every endpoint down, a second, panic pass tries those."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from opentelemetry import trace

from router.api.chat import ChatRequest
from router.errors import (
    AttemptFailed,
    InvalidRequest,
    NoUpstreamAvailable,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from router.pipeline.attempts import Attempts, OpenStream
from router.telemetry import names as n
from router.telemetry.metrics import Metrics
from router.types import Decision, RequestOutcome, Target
from router.upstream import ordering
from router.upstream.cluster import ClusterRuntime
from router.upstream.endpoints import Endpoint
from router.upstream.lease import Lease, Refusal
from router.upstream.limits import retry_after
from router.upstream.request import DEADLINE_HEADER, affinity_key
from router.upstream.transport.base import Completion
from router.upstream.upstreams import Upstreams

# Refusals that are the circuit breaker's, by the breaker metric's label.
_BREAKER = MappingProxyType(
    {"full": "in_flight", "pending_full": "pending", "pending_timeout": "pending", "retry_budget": "retries"}
)


@dataclass
class _Tally:
    """What the walk over a request's targets has done so far."""

    attempted: int = 0
    timeouts: int = 0
    failures: list[str] = field(default_factory=list)
    tried: set[tuple[str, str]] = field(default_factory=set)
    back_in: list[float] = field(default_factory=list)  # seconds until a skipped target may take requests
    down_only: bool = False  # some target was skipped only because health checks call its endpoints down
    deadline_hit: bool = False
    # Targets passed over only because the request carries vLLM-only fields, and targets passed over for
    # any other reason: if the first are all there were, the request itself is at fault (a 400).
    vllm_only_skips: int = 0
    other_skips: int = 0
    affinity: dict[str, bytes | None] = field(default_factory=dict)
    # A target's model refused the request as longer than its context: the models that did (no other
    # target serving one of them is tried), and the refusal, the client's answer if no model can take it.
    too_long: set[str] = field(default_factory=set)
    too_long_refusal: UpstreamRejected | None = None
    too_long_attempts: int = 0
    # A stream's limit on its first event on the current target: the route's first-token target, except on
    # the chain's last target (which keeps its cluster's own limits: better late than nothing).
    first_token_s: float | None = None


class Failover:
    def __init__(self, attempts: Attempts, metrics: Metrics) -> None:
        self.attempts = attempts
        self.metrics = metrics

    async def run(
        self,
        upstreams: Upstreams,
        chat: ChatRequest,
        headers: Mapping[str, str],
        decision: Decision,
        outcome: RequestOutcome,
        deadline: float | None,
        tried: set[tuple[str, str]] | None = None,
    ) -> Completion | OpenStream:
        """The first answer (or open stream) any target gives; else the error that says why none did.
        ``tried``: (cluster, URL) endpoints not to call (a stream rescue's broken one)."""
        targets = self._plan(decision, upstreams, outcome)
        tally = _Tally(tried=set(tried or ()))
        for panic in (False, True):
            if panic and (tally.attempted or not tally.down_only or tally.deadline_hit):
                break
            for target in targets:
                last = target is targets[-1]
                tally.first_token_s = (
                    None if last or not chat.stream or not decision.latency else decision.latency.ttft_s
                )
                cluster = upstreams.get(target.cluster)
                if cluster is None:
                    self._skip(outcome, target.cluster, Refusal("unavailable", "not built"), tally)
                    continue
                result = await self._try_cluster(chat, headers, target, cluster, outcome, deadline, tally, panic)
                if result is not None:
                    return result
                if tally.deadline_hit:
                    break
        if tally.too_long_refusal is not None and tally.attempted == tally.too_long_attempts:
            raise tally.too_long_refusal  # every model tried is too small: the client's 400, with its reason
        raise _no_answer(chat, decision, tally)

    def _plan(self, decision: Decision, upstreams: Upstreams, outcome: RequestOutcome) -> list[Target]:
        """The decision's targets, those predicted over its latency targets moved to the end."""
        if decision.latency is None:
            return list(decision.targets)
        predictions = [_prediction(upstreams.get(t.cluster)) for t in decision.targets]
        ordered, deferred = ordering.order(decision.targets, decision.latency, predictions)
        for target, why in deferred:
            self._skip(outcome, target.cluster, Refusal("over_budget", f"deferred, {why}"))
        return ordered

    def _skip(self, outcome: RequestOutcome, cluster: str, refusal: Refusal, tally: _Tally | None = None) -> None:
        """A target passed over (metric, span event, access log; and the error message if all fail, with
        the refusal's public words where its detail is the operator's business)."""
        text = f"{cluster}: {refusal.detail}"
        outcome.skipped.append(text)
        if tally is not None:
            tally.failures.append(text if refusal.public is None else f"{cluster}: {refusal.public}")
            if refusal.back_in is not None:
                tally.back_in.append(refusal.back_in)
            tally.down_only |= refusal.down_only
        breaker = _BREAKER.get(refusal.reason)
        if breaker is not None:
            self.metrics.breaker_rejections.labels(cluster, breaker).inc()
        self.metrics.spillovers.labels(cluster, refusal.reason).inc()
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                n.EVENT_TARGET_SKIPPED,
                {n.ROUTER_CLUSTER: cluster, n.ROUTER_SKIP_REASON: refusal.reason, "detail": refusal.detail},
            )

    async def _try_cluster(
        self,
        chat: ChatRequest,
        headers: Mapping[str, str],
        target: Target,
        cluster: ClusterRuntime,
        outcome: RequestOutcome,
        deadline: float | None,
        tally: _Tally,
        panic: bool,
    ) -> Completion | OpenStream | None:
        name = cluster.name
        if chat.vllm_only and not cluster.takes_vllm_fields:
            tally.vllm_only_skips += 1
            detail = f"does not take {', '.join(chat.vllm_only)} (vLLM only)"
            self._skip(outcome, name, Refusal("unsupported", detail), tally)
            return None
        tally.other_skips += 1
        model = target.adapter or cluster.upstream_model
        if model in tally.too_long:
            self._skip(outcome, name, Refusal("context_length", f"{model} already refused it as too long"), tally)
            return None
        got = await cluster.acquire(target.adapter, tally.tried, panic, deadline)
        if isinstance(got, Refusal):
            self._skip(outcome, name, got, tally)
            return None
        lease: Lease = got
        result: Completion | OpenStream | None = None
        try:
            result = await self._attempts(chat, headers, target, lease, outcome, deadline, tally)
            return result
        finally:
            if not isinstance(result, OpenStream):  # an open stream keeps its lease until the relay ends
                lease.release()

    async def _attempts(
        self,
        chat: ChatRequest,
        headers: Mapping[str, str],
        target: Target,
        lease: Lease,
        outcome: RequestOutcome,
        deadline: float | None,
        tally: _Tally,
    ) -> Completion | OpenStream | None:
        """The attempts on one leased cluster, until one answers or the lease refuses another."""
        cluster = lease.cluster
        name, model = cluster.name, target.adapter or cluster.upstream_model
        again: tuple[Endpoint, float] | None = None  # the endpoint that just failed, to retry after a wait
        while True:
            if again is not None:
                await asyncio.sleep(again[1])
            left = again is not None or lease.attempts < cluster.max_attempts
            if left and deadline is not None and time.monotonic() >= deadline:
                tally.deadline_hit = True
                return None
            if again is not None:
                step = lease.retry_same(again[0])
                again = None
            else:
                step = lease.next(cluster.affinity_key(lambda mode: self._affinity(tally, mode, chat, headers)))
            if isinstance(step, Refusal):
                # Attempts that all failed were counted as they failed; the skip is for the log.
                self._skip(outcome, name, step, None if step.reason == "failed" else tally)
                return None
            tally.attempted += 1
            try:
                result = await self.attempts.attempt(
                    chat, lease, step.endpoint, target, outcome, deadline, step.retry, tally.first_token_s
                )
            except UpstreamRejected as exc:
                if not exc.context_exceeded:
                    raise  # the request's own fault, whoever answers: the client hears it, nothing retried
                # Longer than this model's context: the route's next target with another model may take it.
                tally.too_long.add(model)
                tally.too_long_attempts += 1
                tally.too_long_refusal = tally.too_long_refusal or exc
                tally.failures.append(f"{name}: context length exceeded")
                outcome.attempts[-1].next_reason = "context_length_exceeded"
                return None
            except AttemptFailed as exc:
                tally.timeouts += exc.timeout
                # The client hears the cluster and the kind of failure; the endpoint and the upstream's
                # own words are in the span, the log and the admin view.
                tally.failures.append(f"{name}: {exc.public}")
                outcome.attempts[-1].next_reason = exc.kind
                if not lease.untried_left():  # no other endpoint: this one again, after a wait, if it may be
                    wait = lease.again(step.endpoint, exc, deadline)
                    again = None if wait is None else (step.endpoint, wait)
                continue
            finally:
                lease.done()
            outcome.cluster = name
            return result

    @staticmethod
    def _affinity(tally: _Tally, mode: str, chat: ChatRequest, headers: Mapping[str, str]) -> bytes | None:
        """The request's affinity key for ``mode``, computed once per request."""
        if mode not in tally.affinity:
            tally.affinity[mode] = affinity_key(mode, chat, headers)
        return tally.affinity[mode]


def _no_answer(chat: ChatRequest, decision: Decision, tally: _Tally) -> Exception:
    detail = "; ".join(tally.failures) or "no targets"
    if tally.attempted == 0 and tally.vllm_only_skips and not tally.other_skips:
        fields = ", ".join(f"'{f}'" for f in chat.vllm_only)
        one = len(chat.vllm_only) == 1
        return InvalidRequest(
            f"{fields} {'is a vLLM extra' if one else 'are vLLM extras'}: this request is "
            f"routed to {decision.route!r}, whose targets are frontier APIs that do not take "
            f"{'it' if one else 'them'}. Leave {'it' if one else 'them'} "
            "out, or ask for a model served by a self-hosted pool.",
            param=chat.vllm_only[0],
        )
    if tally.deadline_hit:
        return UpstreamTimeout(f"The request's deadline ({DEADLINE_HEADER}) passed: {detail}")
    if tally.attempted == 0:
        wait = min(tally.back_in) if tally.back_in else 1.0
        return NoUpstreamAvailable(f"No upstream can take this request now: {detail}", retry_after_s=retry_after(wait))
    if tally.timeouts == tally.attempted:
        return UpstreamTimeout(f"Every upstream attempt timed out: {detail}")
    return UpstreamError(f"Every upstream attempt failed: {detail}")


def _prediction(cluster: ClusterRuntime | None) -> ordering.Prediction:
    if cluster is None:
        return ordering.Prediction(None, None)
    now = time.monotonic()
    full = cluster.in_flight >= cluster.config.circuit_breaker.max_in_flight
    queue = (cluster.queue.ewma or 0.0) if full else 0.0
    return ordering.Prediction(cluster.ttft.p95(now), cluster.latency.p95(now), queue)
