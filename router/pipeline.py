"""The life of a request, in order. This module owns the sequence; each stage lives elsewhere.

::

    features        router.chat.features             (skipped for pinned aliases)
    classification  router.runtime.classify          (micro-batched encoder + heads; skipped for pinned
                                                      aliases and policies without task/complexity rules;
                                                      on failure the rules run without it)
    decision        router.policy.engine.decide      (pure)
    deadline        the caller's x-router-timeout-ms, cutting every later wait and upstream timeout
    plan            router.upstream.plan.order       (pure: targets predicted over the route's latency
                                                      budget go last)
    targets, in order (route target, then fallbacks; a second, panic pass over endpoints that only
    health checks call down if the first pass could try nothing):
      admission     ClusterRuntime.admit             (circuit breaker: in flight, pending; full -> next)
      endpoint      ClusterRuntime.pick              (adapter, health, ejection; least loaded of two
                                                      choices, or affinity: router.upstream.balance)
      retry budget  ClusterRuntime.try_retry         (second and later attempts of the request)
      attempt       Transport.complete / .stream     (router.transport.*), one CLIENT span each
      outcome       ClusterRuntime.record_*          (outlier ejection, cooldowns, latency estimates)
      failure before the first byte -> next endpoint (up to max_attempts) or next target
    relay           events to the client as they arrive; a break after the first byte ends the
                    stream with an SSE error event and [DONE]
    accounting      metrics and spans close (router.http.middleware writes the access log)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

import orjson
from opentelemetry import trace

from router.accounting import Accounting
from router.attempts import Attempts, OpenStream, StreamTail
from router.chat import ChatRequest, features
from router.classifier.text import prompt_view
from router.errors import (
    AttemptFailed,
    ClassifierUnavailable,
    InvalidRequest,
    NoUpstreamAvailable,
    UpstreamError,
    UpstreamTimeout,
)
from router.explain import Classified
from router.policy.compile import Policy
from router.policy.engine import decide
from router.policy.schema import VllmCluster
from router.runtime.clusters import ClusterRuntime, Upstreams
from router.runtime.state import RouterState
from router.telemetry import names as n
from router.tenancy.auth import Principal
from router.transport.base import Completion, StreamState
from router.types import Decision, RequestOutcome, Target, Usage
from router.upstream import plan
from router.upstream.limits import retry_after
from router.upstream.request import DEADLINE_HEADER, affinity_key, deadline_of


@dataclass
class _Tally:
    """What the walk over a request's targets has done so far."""

    attempted: int = 0
    timeouts: int = 0
    failures: list[str] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)
    back_in: list[float] = field(default_factory=list)  # seconds until a skipped target may take requests
    down_only: bool = False  # some target was skipped only because health checks call its endpoints down
    deadline_hit: bool = False
    # Targets passed over only because the request carries vLLM-only fields, and targets passed over for
    # any other reason: if the first are all there were, the request itself is at fault (a 400).
    vllm_only_skips: int = 0
    other_skips: int = 0
    affinity: dict[str, bytes | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Streaming:
    """An answer that streams: the open upstream stream, and what accounting does at its end."""

    opened: OpenStream
    tail: StreamTail


class Pipeline:
    def __init__(self, state: RouterState) -> None:
        self.state = state
        self.attempts = Attempts(state)
        self.accounting = Accounting(state)

    async def relay(
        self, streaming: Streaming, write: Callable[[bytes], Awaitable[None]], outcome: RequestOutcome
    ) -> None:
        await self.attempts.relay(streaming.opened, streaming.tail, write, outcome)

    async def abandon(self, streaming: Streaming) -> None:
        await self.attempts.abandon(streaming.opened, streaming.tail)

    async def classify(
        self, chat: ChatRequest, headers: Mapping[str, str], policy: Policy, tenant: str | None, force: bool = False
    ) -> Classified:
        """Features plus classification. ``force``: classify even if no rule would look (explain)."""
        feats = features(chat, headers, tenant)
        view = prompt_view(chat.parsed.messages)
        runtime = self.state.classifier
        if not policy.classifier.enabled or not (force or policy.needs_classifier):
            return Classified(feats, "skipped", view)
        if runtime is None:
            reason = self.state.classifier_error
            if reason is not None:
                self.state.metrics.classifier_errors.labels("unavailable").inc()
                return Classified(feats, "failed", view, error=reason)
            return Classified(feats, "disabled", view)
        try:
            result, cached = await runtime.classify(view, policy)
        except ClassifierUnavailable as exc:
            self.state.metrics.classifier_errors.labels(exc.reason).inc()
            return Classified(feats, "timeout" if exc.reason == "timeout" else "failed", view, error=exc.message)
        self.state.metrics.classifications.labels(result.task, result.source).inc()
        feats = replace(feats, task=result.task, task_confidence=result.confidence, complexity=result.complexity)
        return Classified(feats, "cached" if cached else "classified", view, result)

    # -- stages up to the first byte ---------------------------------------------------------
    async def open(
        self, chat: ChatRequest, headers: Mapping[str, str], outcome: RequestOutcome, principal: Principal
    ) -> Completion | Streaming:
        serving = self.state.serving
        tracer = self.state.tracing.tracer
        outcome.alias, outcome.stream = chat.alias, chat.stream
        deadline = deadline_of(headers, time.monotonic())
        decision = serving.policy.pinned.get(chat.alias)
        if decision is None:
            with tracer.start_as_current_span(n.SPAN_CLASSIFY) as span:
                c = await self.classify(chat, headers, serving.policy, principal.tenant)
                feats = c.features
                outcome.task, outcome.complexity = feats.task, feats.complexity
                if span.is_recording():
                    _classify_attributes(span, c)
            with tracer.start_as_current_span(n.SPAN_DECIDE) as span:
                decision = decide(serving.policy, feats)
                if span.is_recording():
                    span.set_attributes({n.ROUTER_ROUTE: decision.route, n.ROUTER_REASON: decision.reason})
        outcome.route, outcome.reason = decision.route, decision.reason
        acc = self.accounting
        cache_key = acc.cache_key(principal, chat)
        if cache_key is not None:
            hit = await acc.cache_get(cache_key, outcome)
            outcome.cache = "miss" if hit is None else "hit"
            if hit is not None:
                await acc.settle(serving, principal, None, outcome, hit.usage, cache_hit=True)
                return hit
        decision, reservation = await acc.reserve(serving, principal, decision, chat, outcome)
        try:
            result = await self._try_targets(serving.upstreams, chat, headers, decision, outcome, deadline)
        except BaseException:
            await acc.settle(serving, principal, reservation, outcome, None)  # release what was reserved
            raise
        if isinstance(result, Completion):
            await acc.settle(serving, principal, reservation, outcome, result.usage or Usage())
            if cache_key is not None:
                await acc.cache_put(cache_key, result, outcome)
            return result
        prices, baseline = acc.prices(serving, result.cluster.name), serving.prices.baseline

        async def usage_of(st: StreamState) -> Usage:
            return await acc.stream_usage(chat, st)

        def before_done(usage: Usage) -> bytes:
            # Headers went out with the first byte; a stream's cost is known only at its end. SSE comments
            # are ignored by OpenAI SDKs and EventSource alike.
            cost = {"cost_usd": prices.cost(usage), "baseline_cost_usd": baseline.cost(usage)}
            return b": router-cost " + orjson.dumps(cost) + b"\n\n"

        async def finish(usage: Usage) -> None:
            await acc.settle(serving, principal, reservation, outcome, usage)

        return Streaming(result, StreamTail(usage_of, before_done, finish))

    def _plan(self, decision: Decision, upstreams: Upstreams, outcome: RequestOutcome) -> list[Target]:
        """The decision's targets, those predicted over its latency budget moved to the end."""
        if decision.latency is None:
            return list(decision.targets)
        predictions = [_prediction(upstreams.get(t.cluster)) for t in decision.targets]
        ordered, deferred = plan.order(decision.targets, decision.latency, predictions)
        for target, why in deferred:
            self._skip(outcome, target.cluster, "over_budget", f"deferred, {why}")
        return ordered

    async def _try_targets(
        self,
        upstreams: Upstreams,
        chat: ChatRequest,
        headers: Mapping[str, str],
        decision: Decision,
        outcome: RequestOutcome,
        deadline: float | None,
    ) -> Completion | OpenStream:
        targets = self._plan(decision, upstreams, outcome)
        tally = _Tally()
        for panic in (False, True):
            if panic and (tally.attempted or not tally.down_only or tally.deadline_hit):
                break
            for target in targets:
                cluster = upstreams.get(target.cluster)
                if cluster is None:
                    self._skip(outcome, target.cluster, "unavailable", "not built", tally)
                    continue
                result = await self._try_cluster(chat, headers, target, cluster, outcome, deadline, tally, panic)
                if result is not None:
                    return result
                if tally.deadline_hit:
                    break
        detail = "; ".join(tally.failures) or "no targets"
        if tally.attempted == 0 and tally.vllm_only_skips and not tally.other_skips:
            fields = ", ".join(f"'{f}'" for f in chat.vllm_only)
            raise InvalidRequest(
                f"{fields} {'is a vLLM extra' if len(chat.vllm_only) == 1 else 'are vLLM extras'}: this request is "
                f"routed to {decision.route!r}, whose targets are frontier APIs that do not take "
                f"{'it' if len(chat.vllm_only) == 1 else 'them'}. Leave {'it' if len(chat.vllm_only) == 1 else 'them'} "
                "out, or ask for a model served by a self-hosted pool.",
                param=chat.vllm_only[0],
            )
        if tally.deadline_hit:
            raise UpstreamTimeout(f"The request's deadline ({DEADLINE_HEADER}) passed: {detail}")
        if tally.attempted == 0:
            wait = min(tally.back_in) if tally.back_in else 1.0
            raise NoUpstreamAvailable(
                f"No upstream can take this request now: {detail}", retry_after_s=retry_after(wait)
            )
        if tally.timeouts == tally.attempted:
            raise UpstreamTimeout(f"Every upstream attempt timed out: {detail}")
        raise UpstreamError(f"Every upstream attempt failed: {detail}")

    def _skip(
        self,
        outcome: RequestOutcome,
        cluster: str,
        reason: str,
        detail: str,
        tally: _Tally | None = None,
        public: str | None = None,
    ) -> None:
        """A target passed over (metric, span event, access log; and the error message if all fail, with
        ``public`` instead of ``detail`` where the detail is the operator's business)."""
        text = f"{cluster}: {detail}"
        outcome.skipped.append(text)
        if tally is not None:
            tally.failures.append(text if public is None else f"{cluster}: {public}")
        self.state.metrics.spillovers.labels(cluster, reason).inc()
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                n.EVENT_TARGET_SKIPPED, {n.ROUTER_CLUSTER: cluster, n.ROUTER_SKIP_REASON: reason, "detail": detail}
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
        if chat.vllm_only and not cluster.is_vllm:
            tally.vllm_only_skips += 1
            self._skip(outcome, name, "unsupported", f"does not take {', '.join(chat.vllm_only)} (vLLM only)", tally)
            return None
        tally.other_skips += 1
        if cluster.unavailable_reason is not None:
            self._skip(outcome, name, "unavailable", cluster.unavailable_reason, tally, "not configured")
            return None
        found = cluster.candidates(target.adapter, tally.tried, panic)
        if not found.endpoints:
            back = cluster.soonest_back()
            if back is not None:
                tally.back_in.append(back)
            tally.down_only |= found.down_only
            self._skip(outcome, name, "no_endpoint", found.why, tally)
            return None
        rejected = await cluster.admit(deadline)
        if rejected is not None:
            cb = cluster.config.circuit_breaker
            self.state.metrics.breaker_rejections.labels(name, "in_flight" if rejected == "full" else "pending").inc()
            tally.back_in.append(cb.pending_timeout_ms / 1000)
            self._skip(outcome, name, rejected, f"{rejected.replace('_', ' ')} ({cb.max_in_flight} in flight)", tally)
            return None
        handed_off = False
        try:
            for tries in range(cluster.max_attempts):
                if deadline is not None and time.monotonic() >= deadline:
                    tally.deadline_hit = True
                    return None
                lb = cluster.config.load_balancing if isinstance(cluster.config, VllmCluster) else None
                key = None
                if lb is not None and lb.affinity != "none":
                    if lb.affinity not in tally.affinity:
                        tally.affinity[lb.affinity] = affinity_key(lb.affinity, chat, headers)
                    key = tally.affinity[lb.affinity]
                pick = cluster.pick(target.adapter, key, tally.tried, panic, found if tries == 0 else None)
                if pick.endpoint is None:
                    self._skip(outcome, name, "no_endpoint", pick.why_none, tally)
                    return None
                # A retry is a second attempt on the same cluster (its retry budget); moving on to a fallback
                # cluster is failover, bounded by that cluster's own in-flight limit.
                retry = tries > 0
                if retry and not cluster.try_retry():
                    self.state.metrics.breaker_rejections.labels(name, "retries").inc()
                    self._skip(
                        outcome, name, "retry_budget", f"retry budget spent ({cluster.retries} in flight)", tally
                    )
                    return None
                tally.attempted += 1
                tally.tried.add(pick.endpoint.url)
                try:
                    result = await self.attempts.attempt(chat, cluster, pick.endpoint, target, outcome, deadline, retry)
                except AttemptFailed as exc:
                    tally.timeouts += exc.timeout
                    # The client hears the cluster and the kind of failure; the endpoint and the upstream's
                    # own words are in the span, the log and the admin view.
                    tally.failures.append(f"{name}: {exc.public}")
                    outcome.attempts[-1].next_reason = exc.kind
                    continue
                finally:
                    if retry:
                        cluster.end_retry()
                outcome.cluster = name
                handed_off = isinstance(result, OpenStream)
                return result
            self._skip(outcome, name, "failed", f"{cluster.max_attempts} attempt(s) failed")
            return None
        finally:
            if not handed_off:
                cluster.release()


def _prediction(cluster: ClusterRuntime | None) -> plan.Prediction:
    if cluster is None:
        return plan.Prediction(None, None)
    now = time.monotonic()
    full = cluster.in_flight >= cluster.config.circuit_breaker.max_in_flight
    queue = (cluster.queue.ewma or 0.0) if full else 0.0
    return plan.Prediction(cluster.ttft.p95(now), cluster.latency.p95(now), queue)


def _classify_attributes(span: trace.Span, c: Classified) -> None:
    feats = c.features
    span.set_attributes(
        {
            n.ROUTER_FEATURE_PROMPT_TOKENS: feats.prompt_tokens,
            n.ROUTER_FEATURE_HAS_TOOLS: feats.has_tools,
            n.ROUTER_FEATURE_HAS_IMAGES: feats.has_images,
            n.ROUTER_CLASSIFIER: c.status,
        }
    )
    if c.result is not None:
        span.set_attributes(
            {
                n.ROUTER_TASK: c.result.task,
                n.ROUTER_TASK_CONFIDENCE: c.result.confidence,
                n.ROUTER_TASK_SOURCE: c.result.source,
                n.ROUTER_COMPLEXITY: c.result.complexity,
            }
        )
    if c.error is not None:
        span.set_attribute(n.ROUTER_CLASSIFIER_ERROR, c.error)
