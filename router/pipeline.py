"""The life of a request, in order. This module owns the sequence; each stage lives elsewhere.

::

    features        router.chat.features             (skipped for pinned aliases)
    classification  router.runtime.classify          (micro-batched encoder + heads; skipped for pinned
                                                      aliases and policies without task/complexity rules;
                                                      on failure the rules run without it)
    decision        router.policy.engine.decide      (pure)
    targets         decision.targets, in order       (route target, then fallbacks)
      admission     ClusterRuntime.try_acquire       (concurrency limit: full -> next target at once)
      endpoints     ClusterRuntime.endpoint_order    (router.balance, pure)
      attempt       Transport.complete / .stream     (router.transport.*), one CLIENT span each
      failure before the first byte -> next endpoint (at most 2 per cluster) or next target
    relay           events to the client as they arrive; a break after the first byte ends the
                    stream with an SSE error event and [DONE]
    accounting      metrics and spans close (router.http.middleware writes the access log)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from router.chat import ChatRequest, features
from router.classifier.text import prompt_view
from router.errors import (
    AttemptFailed,
    ClassifierUnavailable,
    NoUpstreamAvailable,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from router.explain import Classified
from router.policy.compile import Policy
from router.policy.engine import decide
from router.runtime.clusters import ClusterRuntime, Endpoint
from router.runtime.state import RouterState
from router.sse import DONE, error_event
from router.telemetry import names as n
from router.transport.base import Completion, EventStream, StreamBroken, UpstreamCall
from router.types import AttemptRecord, Decision, RequestOutcome, Target, Usage

ENDPOINTS_PER_CLUSTER = 2


@dataclass
class OpenStream:
    """A stream whose first event has arrived; :meth:`Pipeline.relay` sends it and closes everything."""

    stream: EventStream
    cluster: ClusterRuntime
    span: trace.Span
    started: float
    ttfc: float
    record: AttemptRecord


class Pipeline:
    def __init__(self, state: RouterState) -> None:
        self.state = state

    async def classify(
        self, chat: ChatRequest, headers: Mapping[str, str], policy: Policy, force: bool = False
    ) -> Classified:
        """Features plus classification. ``force``: classify even if no rule would look (explain)."""
        feats = features(chat, headers, headers.get(self.state.settings.tenant_header))
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
        self, chat: ChatRequest, headers: Mapping[str, str], outcome: RequestOutcome
    ) -> Completion | OpenStream:
        serving = self.state.serving
        tracer = self.state.tracing.tracer
        outcome.alias, outcome.stream = chat.alias, chat.stream
        decision = serving.policy.pinned.get(chat.alias)
        if decision is None:
            with tracer.start_as_current_span(n.SPAN_CLASSIFY) as span:
                c = await self.classify(chat, headers, serving.policy)
                feats = c.features
                outcome.task, outcome.complexity = feats.task, feats.complexity
                if span.is_recording():
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
            with tracer.start_as_current_span(n.SPAN_DECIDE) as span:
                decision = decide(serving.policy, feats)
                if span.is_recording():
                    span.set_attributes({n.ROUTER_ROUTE: decision.route, n.ROUTER_REASON: decision.reason})
        outcome.route, outcome.reason = decision.route, decision.reason
        return await self._try_targets(chat, decision, outcome)

    async def _try_targets(
        self, chat: ChatRequest, decision: Decision, outcome: RequestOutcome
    ) -> Completion | OpenStream:
        upstreams = self.state.serving.upstreams
        failures: list[str] = []
        attempted = timeouts = 0
        for target in decision.targets:
            cluster = upstreams.get(target.cluster)
            if cluster is None or cluster.unavailable_reason is not None:
                failures.append(f"{target.cluster}: {cluster.unavailable_reason if cluster else 'not built'}")
                continue
            if not cluster.try_acquire():
                failures.append(f"{target.cluster}: full ({cluster.config.max_concurrency} in flight)")
                continue
            handed_off = False
            try:
                for endpoint in cluster.endpoint_order(ENDPOINTS_PER_CLUSTER):
                    attempted += 1
                    try:
                        result = await self._attempt(chat, cluster, endpoint, target, outcome)
                    except AttemptFailed as exc:
                        timeouts += exc.timeout
                        failures.append(f"{target.cluster} ({endpoint.url}): {exc.message}")
                        outcome.attempts[-1].next_reason = exc.kind
                        continue
                    outcome.cluster = cluster.name
                    handed_off = isinstance(result, OpenStream)
                    return result
            finally:
                if not handed_off:
                    cluster.release()
        detail = "; ".join(failures) or "no targets"
        if attempted == 0:
            raise NoUpstreamAvailable(f"No upstream can take this request now: {detail}")
        if timeouts == attempted:
            raise UpstreamTimeout(f"Every upstream attempt timed out: {detail}")
        raise UpstreamError(f"Every upstream attempt failed: {detail}")

    def _call(
        self,
        chat: ChatRequest,
        cluster: ClusterRuntime,
        endpoint: Endpoint,
        target: Target,
        span: trace.Span,
        outcome: RequestOutcome,
    ) -> UpstreamCall:
        headers: dict[str, str] = {"x-request-id": outcome.request_id}
        self.state.tracing.propagator.inject(headers, context=trace.set_span_in_context(span))
        return UpstreamCall(
            cluster=cluster.name,
            endpoint=endpoint.url,
            upstream_model=target.adapter or cluster.upstream_model,
            body=chat.body,
            stream=chat.stream,
            include_usage=chat.include_usage,
            headers=headers,
            timeouts=cluster.config.timeouts,
            api_key=cluster.api_key,
        )

    async def _attempt(
        self, chat: ChatRequest, cluster: ClusterRuntime, endpoint: Endpoint, target: Target, outcome: RequestOutcome
    ) -> Completion | OpenStream:
        model = target.adapter or cluster.upstream_model
        record = AttemptRecord(cluster.name, endpoint.url, model)
        outcome.attempts.append(record)
        span = self.state.tracing.tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT)
        if span.is_recording():
            span.set_attributes(
                {
                    n.GEN_AI_OPERATION_NAME: n.OPERATION_CHAT,
                    n.GEN_AI_PROVIDER_NAME: cluster.provider,
                    n.GEN_AI_REQUEST_MODEL: model,
                    n.SERVER_ADDRESS: endpoint.host,
                    n.SERVER_PORT: endpoint.port,
                    n.ROUTER_CLUSTER: cluster.name,
                    n.ROUTER_ENDPOINT: endpoint.url,
                    n.ROUTER_ATTEMPT: len(outcome.attempts),
                    n.GEN_AI_REQUEST_STREAM: chat.stream,
                }
            )
            _request_attributes(span, chat.body, self.state.settings.capture_content)
        call = self._call(chat, cluster, endpoint, target, span, outcome)
        started = time.perf_counter()
        try:
            result: Completion | EventStream = (
                await cluster.transport.stream(call) if chat.stream else await cluster.transport.complete(call)
            )
        except (AttemptFailed, UpstreamRejected) as exc:
            kind = exc.kind if isinstance(exc, AttemptFailed) else f"http_{exc.status}"
            record.outcome, record.error_type = "error", kind
            self._end_attempt(span, cluster, model, started, kind, None, None, exc.message)
            raise
        outcome.upstream_model = model
        if isinstance(result, Completion):
            record.outcome = "success"
            outcome.usage = result.usage or Usage()
            if span.is_recording():
                _response_attributes(
                    span, result.response_model, result.response_id, result.finish_reasons, result.usage
                )
                if self.state.settings.capture_content:
                    span.set_attribute(n.GEN_AI_OUTPUT_MESSAGES, _choices_json(result.payload))
            self._end_attempt(span, cluster, model, started, None, result.usage, None, None)
            return result
        ttfc = time.perf_counter() - started
        outcome.ttft_s = time.perf_counter() - outcome.started
        return OpenStream(result, cluster, span, started, ttfc, record)

    def _end_attempt(
        self,
        span: trace.Span,
        cluster: ClusterRuntime,
        model: str,
        started: float,
        error_type: str | None,
        usage: Usage | None,
        ttfc: float | None,
        message: str | None,
    ) -> None:
        if error_type is not None:
            span.set_attribute(n.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, message))
        span.end()
        self.state.metrics.record_attempt(
            cluster.provider, model, cluster.name, time.perf_counter() - started, error_type, usage, ttfc
        )

    # -- after the first byte ----------------------------------------------------------------
    async def relay(
        self,
        opened: OpenStream,
        write: Callable[[bytes], Awaitable[None]],
        outcome: RequestOutcome,
        prompt_estimate: Callable[[], int],
    ) -> None:
        """Send every event to the client; on a break, end the stream cleanly; always close upstream."""
        error_type: str | None = None
        message: str | None = None
        try:
            async for event in opened.stream.events():
                await write(event)
        except StreamBroken as exc:
            error_type, message = exc.kind, str(exc)
            outcome.error_type = f"stream_{exc.kind}"
            await write(error_event(f"The upstream stream broke: {exc}"))
            await write(DONE)
        except BaseException as exc:  # the client went away (reset or cancelled): stop the upstream too
            error_type, message = "client_disconnected", type(exc).__name__
            outcome.error_type = error_type
            raise
        finally:
            await opened.stream.aclose()
            opened.cluster.release()
            st = opened.stream.state
            usage = st.usage or Usage(prompt_estimate(), st.content_chunks)
            outcome.usage = usage
            opened.record.outcome = "error" if error_type else "success"
            opened.record.error_type = error_type
            if opened.span.is_recording():
                _response_attributes(opened.span, st.response_model, st.response_id, tuple(st.finish_reasons), usage)
            self._end_attempt(
                opened.span,
                opened.cluster,
                opened.record.upstream_model,
                opened.started,
                error_type,
                usage,
                opened.ttfc,
                message,
            )


def _request_attributes(span: trace.Span, body: Mapping[str, Any], capture: bool) -> None:
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int):
        span.set_attribute(n.GEN_AI_REQUEST_MAX_TOKENS, max_tokens)
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        span.set_attribute(n.GEN_AI_REQUEST_TEMPERATURE, float(temperature))
    if capture:
        span.set_attribute(n.GEN_AI_INPUT_MESSAGES, orjson.dumps(body.get("messages")).decode())


def _response_attributes(
    span: trace.Span, model: str, response_id: str, reasons: tuple[str, ...], usage: Usage | None
) -> None:
    if model:
        span.set_attribute(n.GEN_AI_RESPONSE_MODEL, model)
    if response_id:
        span.set_attribute(n.GEN_AI_RESPONSE_ID, response_id)
    if reasons:
        span.set_attribute(n.GEN_AI_RESPONSE_FINISH_REASONS, list(reasons))
    if usage is not None:
        span.set_attribute(n.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
        span.set_attribute(n.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)


def _choices_json(payload: bytes) -> str:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    return orjson.dumps([c.get("message") for c in obj.get("choices") or [] if isinstance(c, dict)]).decode()
