"""Failover across a decision's targets: the route's target, then its fallbacks, each held by a
:class:`~router.upstream.cluster.Lease` for as many attempts as its cluster allows; when nothing at all
could be tried because health checks call every endpoint down, a second, panic pass tries those. A route
with ``latency.hedge_after_ms`` walks the rest of the chain beside a slow first target
(:mod:`router.pipeline.hedge`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import fields, replace
from types import MappingProxyType

from opentelemetry import trace

from router.api.chat import ChatRequest
from router.errors import AttemptFailed, UpstreamRejected
from router.pipeline import hedge
from router.pipeline.attempts import Attempts, OpenStream, close_unused
from router.pipeline.chain import Tally, Walk, hedge_started, no_answer, prediction
from router.telemetry import names as n
from router.telemetry.metrics import Metrics
from router.types import Decision, RequestOutcome, Target
from router.upstream import ordering
from router.upstream.cluster import ClusterRuntime
from router.upstream.endpoints import Endpoint
from router.upstream.lease import Lease, Refusal
from router.upstream.request import affinity_key
from router.upstream.transport.base import Completion
from router.upstream.upstreams import Upstreams

# Refusals that are the circuit breaker's, by the breaker metric's label.
_BREAKER = MappingProxyType(
    {"full": "in_flight", "pending_full": "pending", "pending_timeout": "pending", "retry_budget": "retries"}
)


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
        tally = Tally(tried=set(tried or ()))
        walk = Walk(upstreams, chat, headers, decision, targets, deadline, tally, outcome)
        hedge_s = decision.latency.hedge_s if decision.latency is not None else None
        if hedge_s is not None and len(targets) > 1:
            result = await self._hedged(walk, hedge_s)
        else:
            result = await self._walk(walk, targets)
        if result is None and not (tally.attempted or not tally.down_only or tally.deadline_hit):
            result = await self._walk(replace(walk, panic=True), targets)
        if result is not None:
            return result
        if tally.too_long_refusal is not None and tally.attempted == tally.too_long_attempts:
            raise tally.too_long_refusal  # every model tried is too small: the client's 400, with its reason
        raise no_answer(chat, decision, tally)

    async def _walk(self, walk: Walk, targets: list[Target]) -> Completion | OpenStream | None:
        for target in targets:
            cluster = walk.upstreams.get(target.cluster)
            if cluster is None:
                self._skip(walk.outcome, target.cluster, Refusal("unavailable", "not built"), walk.tally)
                continue
            result = await self._try_cluster(walk, target, cluster)
            if result is not None:
                return result
            if walk.tally.deadline_hit:
                break
        return None

    async def _hedged(self, walk: Walk, delay: float) -> Completion | OpenStream | None:
        """The first target, and after ``delay`` without its answer the rest of the chain beside it."""
        first, rest = walk.chain[:1], walk.chain[1:]
        own = (replace(walk.outcome), replace(walk.outcome))  # shallow: the attempt list stays shared
        primary = walk.upstreams.get(first[0].cluster)
        route, metrics = walk.decision.route, self.metrics

        def admit() -> bool:
            return primary is not None and primary.try_retry()  # a hedge is a retry of the first cluster's

        def end() -> None:
            assert primary is not None
            primary.end_retry()

        async def discard(answer: Completion | OpenStream) -> None:
            if isinstance(answer, OpenStream):
                await close_unused(answer, metrics, n.HEDGE_LOST)

        raced = await hedge.race(
            hedge.Hedge(
                first=lambda: self._walk(replace(walk, outcome=own[0]), first),
                rest=lambda hedged: self._walk(replace(walk, outcome=own[1], hedge=hedged), rest),
                admit=admit,
                end=end,
                discard=discard,
                started=lambda: hedge_started(delay, first[0].cluster),
            ),
            delay,
        )
        if raced.by is not None:  # the walk that answered tells the request's story
            winner = own[0] if raced.by == "first" else own[1]
            for f in fields(RequestOutcome):
                setattr(walk.outcome, f.name, getattr(winner, f.name))
        if raced.outcome is not None:
            walk.outcome.hedge = raced.outcome
            metrics.hedges.labels(route, raced.outcome).inc()
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attribute(n.ROUTER_HEDGE, raced.outcome)
        return raced.answer

    def _plan(self, decision: Decision, upstreams: Upstreams, outcome: RequestOutcome) -> list[Target]:
        """The decision's targets, those predicted over its latency targets moved to the end."""
        if decision.latency is None:
            return list(decision.targets)
        predictions = [prediction(upstreams.get(t.cluster)) for t in decision.targets]
        ordered, deferred = ordering.order(decision.targets, decision.latency, predictions)
        for target, why in deferred:
            self._skip(outcome, target.cluster, Refusal("over_budget", f"deferred, {why}"))
        return ordered

    def _skip(self, outcome: RequestOutcome, cluster: str, refusal: Refusal, tally: Tally | None = None) -> None:
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

    async def _try_cluster(self, walk: Walk, target: Target, cluster: ClusterRuntime) -> Completion | OpenStream | None:
        name, tally, outcome = cluster.name, walk.tally, walk.outcome
        if walk.chat.vllm_only and not cluster.takes_vllm_fields:
            tally.vllm_only_skips += 1
            detail = f"does not take {', '.join(walk.chat.vllm_only)} (vLLM only)"
            self._skip(outcome, name, Refusal("unsupported", detail), tally)
            return None
        tally.other_skips += 1
        model = target.adapter or cluster.upstream_model
        if model in tally.too_long:
            self._skip(outcome, name, Refusal("context_length", f"{model} already refused it as too long"), tally)
            return None
        got = await cluster.acquire(target.adapter, tally.tried, walk.panic, walk.deadline)
        if isinstance(got, Refusal):
            self._skip(outcome, name, got, tally)
            return None
        lease: Lease = got
        result: Completion | OpenStream | None = None
        try:
            result = await self._attempts(walk, target, lease)
            return result
        finally:
            if not isinstance(result, OpenStream):  # an open stream keeps its lease until the relay ends
                lease.release()

    async def _attempts(self, walk: Walk, target: Target, lease: Lease) -> Completion | OpenStream | None:
        """The attempts on one leased cluster, until one answers or the lease refuses another."""
        cluster, tally, outcome, deadline = lease.cluster, walk.tally, walk.outcome, walk.deadline
        name, model = cluster.name, target.adapter or cluster.upstream_model
        first_token_s = walk.first_token_s(target)
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
                step = lease.next(
                    cluster.affinity_key(lambda mode: self._affinity(tally, mode, walk.chat, walk.headers))
                )
            if isinstance(step, Refusal):
                # Attempts that all failed were counted as they failed; the skip is for the log.
                self._skip(outcome, name, step, None if step.reason == "failed" else tally)
                return None
            tally.attempted += 1
            try:
                result = await self.attempts.attempt(
                    walk.chat, lease, step.endpoint, target, outcome, deadline, step.retry, first_token_s, walk.hedge
                )
            except UpstreamRejected as exc:
                if not exc.context_exceeded:
                    raise  # the request's own fault, whoever answers: the client hears it, nothing retried
                # Longer than this model's context: the route's next target with another model may take it.
                tally.too_long.add(model)
                tally.too_long_attempts += 1
                tally.too_long_refusal = tally.too_long_refusal or exc
                tally.failures.append(f"{name}: context length exceeded")
                return None
            except AttemptFailed as exc:
                tally.timeouts += exc.timeout
                # The client hears the cluster and the kind of failure; the endpoint and the upstream's
                # own words are in the span, the log and the admin view.
                tally.failures.append(f"{name}: {exc.public}")
                if not lease.untried_left():  # no other endpoint: this one again, after a wait, if it may be
                    wait = lease.again(step.endpoint, exc, deadline)
                    again = None if wait is None else (step.endpoint, wait)
                continue
            finally:
                lease.done()
            outcome.cluster, outcome.endpoint = name, step.endpoint.label
            outcome.tier = step.endpoint.tier_name
            return result

    @staticmethod
    def _affinity(tally: Tally, mode: str, chat: ChatRequest, headers: Mapping[str, str]) -> bytes | None:
        """The request's affinity key for ``mode``, computed once per request."""
        if mode not in tally.affinity:
            tally.affinity[mode] = affinity_key(mode, chat, headers)
        return tally.affinity[mode]
