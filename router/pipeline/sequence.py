"""The life of a request, in order. This module owns the sequence; each stage is handed what it needs
and lives in its own package (docs/life-of-a-request.md walks the same table)::

    classify     router.classifier.stage        features, then the classifier (micro-batched; skipped for
                                                pinned aliases and policies that never look at it; on
                                                failure the rules run without it)
    decide       router.policy.engine           the route, its targets and latency targets (pure)
    deadline     router.upstream.request        the caller's x-router-timeout-ms cuts every later wait
    cache        router.accounting.stage        deterministic requests, exact match per tenant
    reserve      router.accounting.stage        every budget that applies, in one atomic step; an
                                                exhausted one denies (429) or downgrades the route
    failover     router.pipeline.failover       targets in order (those predicted over the latency
                                                targets last), each under a Lease on its cluster
                                                (router.upstream.cluster: breaker slot, endpoint choice
                                                by kind, retry budget); a panic pass if nothing could try;
                                                router.pipeline.hedge races the rest of the chain beside a
                                                slow first target when the route hedges
    attempt      router.pipeline.attempts       one upstream call, its CLIENT span, what its outcome
                                                teaches the cluster (ejection, cooldown, latency)
    relay        router.pipeline.relay          a stream's events as they arrive; a break after the first
                                                byte goes on elsewhere (router.pipeline.rescue) or ends
                                                with an SSE error event and [DONE]
    settle       router.accounting.stage        cost and baseline, the reservation settled, the ledger
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import orjson
from opentelemetry import trace

from router.accounting.ledger import Costed
from router.accounting.stage import Accounting, Reservation
from router.admin.decisions import replay_fields
from router.api.chat import ChatRequest, features
from router.classifier.stage import Classified, classify_request
from router.pipeline import sticky
from router.pipeline.attempts import Attempts, OpenStream
from router.pipeline.failover import Failover
from router.pipeline.relay import Relay, StreamTail
from router.pipeline.rescue import Rescue
from router.policy.compiled import Policy
from router.policy.engine import decide
from router.serving import RouterState, Serving
from router.telemetry import names as n
from router.tenancy.auth import Principal
from router.types import Decision, RequestOutcome, Usage
from router.upstream.request import deadline_of
from router.upstream.transport.base import Completion, StreamState


@dataclass(frozen=True)
class Streaming:
    """An answer that streams: the open upstream stream, and what accounting does at its end."""

    opened: OpenStream
    tail: StreamTail
    rescue: Rescue | None = None  # how a break after the first byte goes on elsewhere


class Pipeline:
    def __init__(self, state: RouterState, accounting: Accounting | None = None) -> None:
        self.state = state
        self.attempts = Attempts(state.metrics, state.tracing, state.settings.capture_content)
        self.failover = Failover(self.attempts, state.metrics)
        self.relays = Relay(state.metrics)
        self.accounting = accounting if accounting is not None else accounting_of(state)
        self.keeper = sticky.Keeper(lambda: state.store)

    async def relay(
        self, streaming: Streaming, write: Callable[[bytes], Awaitable[None]], outcome: RequestOutcome
    ) -> None:
        await self.relays.relay(streaming.opened, streaming.tail, write, outcome, streaming.rescue)

    async def abandon(self, streaming: Streaming) -> None:
        await self.relays.abandon(streaming.opened, streaming.tail)

    async def classify(
        self, chat: ChatRequest, headers: Mapping[str, str], policy: Policy, tenant: str | None, force: bool = False
    ) -> Classified:
        """The classify stage (``force``: even if no rule would look, for explain)."""
        st = self.state
        return await classify_request(
            chat, headers, tenant, policy, st.classifier, st.classifier_error, st.metrics, force
        )

    # -- stages up to the first byte ---------------------------------------------------------
    async def open(
        self, chat: ChatRequest, headers: Mapping[str, str], outcome: RequestOutcome, principal: Principal
    ) -> Completion | Streaming:
        serving = self.state.serving
        outcome.alias, outcome.stream, outcome.policy = chat.alias, chat.stream, serving.policy.digest
        deadline = deadline_of(headers, time.monotonic())
        decision = serving.policy.pinned.get(chat.alias)
        if decision is None:
            decision = await self._route(chat, headers, outcome, principal, serving.policy)
        outcome.route, outcome.reason, outcome.rule = decision.route, decision.reason, decision.rule
        outcome.targets = [t.cluster + (f":{t.adapter}" if t.adapter else "") for t in decision.targets]
        if self.state.decisions is not None:
            capture = self.state.settings.capture_content
            outcome.replay = replay_fields(features(chat, headers, principal.tenant), serving.policy, chat, capture)
        acc, policy = self.accounting, serving.policy
        cache_key = acc.cache.key(policy.cache, principal.tenant, chat)
        if cache_key is not None:
            hit = await acc.cache.get(cache_key)
            outcome.cache = "miss" if hit is None else "hit"
            if hit is not None:
                outcome.cluster, outcome.upstream_model = hit.cluster, hit.model
                usage = hit.completion.usage
                _costed(outcome, await acc.settle(serving, principal, None, outcome.route, hit.cluster, usage, True))
                return hit.completion
        decision, reservation = await acc.reserve(serving, principal, decision, chat, deadline)
        outcome.route, outcome.reason = decision.route, decision.reason
        try:
            result = await self.failover.run(serving.upstreams, chat, headers, decision, outcome, deadline)
        except BaseException:  # release what was reserved
            await acc.settle(serving, principal, reservation, outcome.route, outcome.cluster, None)
            raise
        if isinstance(result, Completion):
            usage = result.usage or Usage()
            _costed(
                outcome,
                await acc.settle(
                    serving, principal, reservation, outcome.route, outcome.cluster, usage, tier=outcome.tier
                ),
            )
            if cache_key is not None:
                await acc.cache.put(policy.cache, cache_key, result, outcome.cluster or "none", outcome.upstream_model)
            return result
        rescue = Rescue(self.failover, serving.upstreams, chat, headers, decision, outcome, deadline, policy.limits)
        return Streaming(result, self._tail(serving, principal, reservation, chat, outcome), rescue)

    async def _route(
        self,
        chat: ChatRequest,
        headers: Mapping[str, str],
        outcome: RequestOutcome,
        principal: Principal,
        policy: Policy,
    ) -> Decision:
        """A routed alias's decision: a conversation's kept one (router.pipeline.sticky), else classify
        and decide, kept for the conversation's next turns where its alias sticks."""
        conv = sticky.conversation(policy, chat, headers, principal.tenant, self.state.settings.state_prefix)
        kept = await self.keeper.recall(policy, conv) if conv is not None else None
        why = None
        if conv is not None and kept is not None:
            why = sticky.escalation(conv.cfg, features(chat, headers, principal.tenant), headers)
            if why is None:
                return kept
        tracer = self.state.tracing.tracer
        with tracer.start_as_current_span(n.SPAN_CLASSIFY) as span:
            c = await self.classify(chat, headers, policy, principal.tenant)
            feats = c.features
            outcome.task, outcome.complexity = feats.task, feats.complexity
            outcome.confidence = c.result.confidence if c.result is not None else None
            if span.is_recording():
                _classify_attributes(span, c)
        with tracer.start_as_current_span(n.SPAN_DECIDE) as span:
            decision = decide(policy, feats)
            if conv is not None and kept is not None and why is not None:
                decision, _ = sticky.settle(policy, kept, decision, why)
            if span.is_recording():
                span.set_attributes({n.ROUTER_ROUTE: decision.route, n.ROUTER_REASON: decision.reason})
        if conv is not None:
            await self.keeper.keep(conv, decision)
        return decision

    def _tail(
        self,
        serving: Serving,
        principal: Principal,
        reservation: Reservation | None,
        chat: ChatRequest,
        outcome: RequestOutcome,
    ) -> StreamTail:
        """What the accounting stage does at a stream's end, with the request's own snapshot and reservation."""
        acc, baseline = self.accounting, serving.prices.baseline

        async def usage_of(st: StreamState) -> Usage:
            return await acc.stream_usage(chat, st)

        def before_done(usage: Usage) -> bytes:
            # Headers went out with the first byte; a stream's cost is known only at its end. SSE comments
            # are ignored by OpenAI SDKs and EventSource alike. The cluster is the one that answered last:
            # a rescued stream may have moved on from the one it opened on.
            prices = serving.prices.of(outcome.cluster or "", outcome.tier)
            cost = {"cost_usd": prices.cost(usage) if prices else 0.0, "baseline_cost_usd": baseline.cost(usage)}
            return b": router-cost " + orjson.dumps(cost) + b"\n\n"

        async def finish(usage: Usage) -> None:
            _costed(
                outcome,
                await acc.settle(
                    serving, principal, reservation, outcome.route, outcome.cluster, usage, tier=outcome.tier
                ),
            )

        return StreamTail(usage_of, before_done, finish)


def accounting_of(state: RouterState) -> Accounting:
    """The accounting stage of a running proxy: its store (as chosen at start-up), metrics and key prefix."""
    return Accounting(lambda: state.store, state.metrics, state.settings.state_prefix, state.tokens)


def _costed(outcome: RequestOutcome, costed: Costed | None) -> None:
    if costed is not None:
        outcome.cost_usd, outcome.baseline_cost_usd = costed.cost_usd, costed.baseline_usd


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
