"""One upstream attempt: its CLIENT span, the transport call, and what its outcome teaches the cluster
(outlier ejection, cooldowns, latency estimates). A stream whose first event arrived is handed on as an
:class:`OpenStream` to :mod:`router.pipeline.relay`."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from router.api.chat import ChatRequest
from router.errors import AttemptFailed, UpstreamRejected
from router.telemetry import names as n
from router.telemetry.metrics import Metrics
from router.telemetry.spans import choices_json, request_attributes, response_attributes
from router.telemetry.tracing import Tracing
from router.types import AttemptRecord, RequestOutcome, Target, Usage
from router.upstream.cluster import ClusterRuntime
from router.upstream.endpoints import Endpoint
from router.upstream.lease import Lease
from router.upstream.outlier import Ejection
from router.upstream.transport.base import Completion, EventStream, UpstreamCall

log = logging.getLogger(__name__)


@dataclass
class OpenStream:
    """A stream whose first event has arrived; the relay sends it and closes everything."""

    stream: EventStream
    lease: Lease  # the cluster's in-flight slot, held until the relay ends
    endpoint: Endpoint
    span: trace.Span
    started: float
    ttfc: float
    record: AttemptRecord
    call: UpstreamCall

    @property
    def cluster(self) -> ClusterRuntime:
        return self.lease.cluster


class Attempts:
    def __init__(self, metrics: Metrics, tracing: Tracing, capture_content: bool = False) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self.capture_content = capture_content

    async def attempt(
        self,
        chat: ChatRequest,
        lease: Lease,
        endpoint: Endpoint,
        target: Target,
        outcome: RequestOutcome,
        deadline: float | None,
        retry: bool,
        first_token_s: float | None = None,
        hedge: bool = False,
    ) -> Completion | OpenStream:
        """One call to ``endpoint`` of the leased cluster: its answer, or the stream once its first event
        is in; a failure raises (AttemptFailed: try elsewhere; UpstreamRejected: the request's fault).
        ``first_token_s``: a tighter limit on a stream's first event than the cluster's (the route's).
        ``hedge``: made by a hedge, alongside the first target's attempts (see :mod:`router.pipeline.hedge`)."""
        cluster = lease.cluster
        model = target.adapter or cluster.upstream_model
        record = AttemptRecord(cluster.name, endpoint.label, model, retry=retry, hedge=hedge)
        # The attempt before this one on the same walk over the chain (a hedge walks beside the first).
        previous = next((r for r in reversed(outcome.attempts) if r.hedge == hedge), None)
        outcome.attempts.append(record)
        if retry:
            self.metrics.retries.labels(cluster.name, (previous and previous.error_type) or "unknown").inc()
        elif previous is not None:
            self.metrics.failovers.labels(previous.cluster, cluster.name).inc()
        span = self._span(chat, cluster, endpoint, model, len(outcome.attempts), retry, hedge)
        call = self._call(chat, cluster, endpoint, model, span, outcome, deadline, first_token_s)
        started = time.perf_counter()
        endpoint.in_flight += 1
        endpoint.attempts += 1
        try:
            result: Completion | EventStream = (
                await cluster.transport.stream(call) if chat.stream else await cluster.transport.complete(call)
            )
        except BaseException as exc:
            endpoint.in_flight -= 1
            self._failed(exc, cluster, endpoint, call, span, record, started)
            raise
        elapsed = time.perf_counter() - started
        now = time.monotonic()
        cluster.record_success(endpoint)
        cluster.ttft.observe(now, elapsed)
        endpoint.ttft.observe(now, elapsed)
        outcome.upstream_model = model
        if not isinstance(result, Completion):
            outcome.ttft_s = time.perf_counter() - outcome.started
            return OpenStream(result, lease, endpoint, span, started, elapsed, record, call)
        endpoint.in_flight -= 1
        cluster.latency.observe(now, elapsed)
        endpoint.latency.observe(now, elapsed)
        record.outcome = "success"
        outcome.usage = result.usage or Usage()
        if span.is_recording():
            response_attributes(span, result.response_model, result.response_id, result.finish_reasons, result.usage)
            if self.capture_content:
                span.set_attribute(n.GEN_AI_OUTPUT_MESSAGES, choices_json(result.payload))
        end_span(self.metrics, span, cluster, model, started, None, result.usage, None, record)
        return result

    def _span(
        self,
        chat: ChatRequest,
        cluster: ClusterRuntime,
        endpoint: Endpoint,
        model: str,
        number: int,
        retry: bool,
        hedge: bool,
    ) -> trace.Span:
        span = self.tracing.tracer.start_span(f"chat {cluster.semconv_model(model)}", kind=SpanKind.CLIENT)
        if span.is_recording():
            span.set_attributes(
                {
                    n.GEN_AI_OPERATION_NAME: n.OPERATION_CHAT,
                    n.GEN_AI_PROVIDER_NAME: cluster.provider,
                    n.GEN_AI_REQUEST_MODEL: cluster.semconv_model(model),
                    n.SERVER_ADDRESS: endpoint.host,
                    n.SERVER_PORT: endpoint.port,
                    n.ROUTER_CLUSTER: cluster.name,
                    n.ROUTER_ENDPOINT: endpoint.label,
                    n.ROUTER_ATTEMPT: number,
                    n.ROUTER_RETRY: retry,
                    n.GEN_AI_REQUEST_STREAM: chat.stream,
                }
            )
            if hedge:
                span.set_attribute(n.ROUTER_HEDGE, True)
            request_attributes(span, chat.body, self.capture_content)
        return span

    def _call(
        self,
        chat: ChatRequest,
        cluster: ClusterRuntime,
        endpoint: Endpoint,
        model: str,
        span: trace.Span,
        outcome: RequestOutcome,
        deadline: float | None,
        first_token_s: float | None = None,
    ) -> UpstreamCall:
        headers: dict[str, str] = {"x-request-id": outcome.request_id}
        timeouts = cluster.config.timeouts
        if first_token_s is not None:
            own = timeouts.first_token_s if timeouts.first_token_s is not None else timeouts.first_byte_s
            timeouts = timeouts.model_copy(update={"first_token_s": min(own, first_token_s)})
        self.tracing.propagator.inject(headers, context=trace.set_span_in_context(span))
        # Every request goes out with an output cap: the client's, or the cluster's default (which budgets
        # reserved), never a library's or a server's own default.
        body = chat.body if chat.output_cap is not None else {**chat.body, "max_tokens": cluster.default_max_tokens}
        return UpstreamCall(
            cluster=cluster.name,
            endpoint=endpoint.url,
            upstream_model=model,
            body=body,
            stream=chat.stream,
            include_usage=chat.include_usage,
            headers=headers,
            timeouts=timeouts,
            api_key=cluster.api_key,
            remaining_s=None if deadline is None else deadline - time.monotonic(),
            prefill=chat.continues,
        )

    def _failed(
        self,
        exc: BaseException,
        cluster: ClusterRuntime,
        endpoint: Endpoint,
        call: UpstreamCall,
        span: trace.Span,
        record: AttemptRecord,
        started: float,
    ) -> None:
        """What a failed attempt teaches: the endpoint's failure only when the endpoint is to blame."""
        metrics, model = self.metrics, call.upstream_model
        if isinstance(exc, AttemptFailed):
            record.outcome, record.error_type, record.next_reason = "error", exc.kind, exc.kind
            if exc.timeout and call.deadline_bound:
                # The caller's deadline ran out, not the endpoint: nothing is held against it (a caller
                # with a 1 ms deadline must not be able to eject a replica other tenants depend on).
                span.set_attribute(n.ROUTER_BLAME, "client")
            else:
                ejection = cluster.record_failure(endpoint, exc)
                if ejection is not None:
                    log_ejection(metrics, cluster, endpoint, ejection)
                    span.add_event(n.EVENT_EJECTED, {"seconds": ejection.seconds, "count": ejection.count})
            span.set_attribute(n.ROUTER_NEXT_REASON, exc.kind)
            end_span(metrics, span, cluster, model, started, exc.kind, None, None, record)
        elif isinstance(exc, UpstreamRejected):
            # The request is at fault, not the endpoint: nothing is held against it, and nothing is
            # forgiven either (an answer the provider never sent is no proof of health).
            if exc.answered:
                cluster.record_success(endpoint)
            span.set_attribute(n.ROUTER_BLAME, "client")
            record.outcome, record.error_type = "rejected", f"http_{exc.status}"
            if exc.context_exceeded:  # the route's next target with another model may take it
                record.next_reason = "context_length_exceeded"
            end_span(metrics, span, cluster, model, started, record.error_type, None, None, record)
        else:  # cancelled: the client went away, or a hedge answered first
            lost = isinstance(exc, asyncio.CancelledError) and exc.args[:1] == (n.HEDGE_LOST,)
            record.outcome, record.error_type = "cancelled", n.HEDGE_LOST if lost else n.CLIENT_DISCONNECTED
            end_span(metrics, span, cluster, model, started, record.error_type, None, None, record)


async def close_unused(opened: OpenStream, metrics: Metrics, why: str) -> None:
    """Close a stream that will not be relayed (``why``: the client went away, or a hedge answered first):
    upstream closed, its slot given back, its span ended as cancelled (nobody's failure)."""
    try:
        await opened.stream.aclose()
    finally:
        opened.endpoint.in_flight -= 1
        opened.lease.release()
        opened.record.outcome, opened.record.error_type = "cancelled", why
        m = opened.record.upstream_model
        end_span(metrics, opened.span, opened.cluster, m, opened.started, why, None, opened.ttfc, opened.record)


def log_ejection(metrics: Metrics, cluster: ClusterRuntime, endpoint: Endpoint, ejection: Ejection) -> None:
    metrics.ejections.labels(cluster.name, endpoint.label, ejection.reason).inc()
    log.warning(
        "cluster %s: endpoint %s %s for %.1f s after %s (ejection %d in a row); last error: %s",
        cluster.name, endpoint.label, cluster.out_word, ejection.seconds, ejection.reason, ejection.count,
        endpoint.last_error,
    )  # fmt: skip


def end_span(
    metrics: Metrics,
    span: trace.Span,
    cluster: ClusterRuntime,
    model: str,
    started: float,
    error_type: str | None,
    usage: Usage | None,
    ttfc: float | None,
    record: AttemptRecord | None = None,
) -> None:
    """Close an attempt's span and record it (duration, tokens, time to first chunk; on ``record``, its
    duration for the access log)."""
    if span.is_recording():
        span.set_attribute(n.ROUTER_OUTCOME, "error" if error_type else "success")
        if ttfc is not None:
            span.set_attribute(n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, ttfc)
    if error_type is not None:
        span.set_attribute(n.ERROR_TYPE, error_type)
        # The kind of failure, not the upstream's own text (it may echo the prompt, a URL or a key).
        span.set_status(Status(StatusCode.ERROR, error_type))
    span.end()
    seconds = time.perf_counter() - started
    if record is not None:
        record.seconds = seconds
    metrics.record_attempt(
        cluster.provider,
        cluster.semconv_model(model),
        cluster.name,
        seconds,
        error_type,
        usage,
        ttfc,
    )
