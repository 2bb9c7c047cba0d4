"""One upstream attempt: its CLIENT span, the transport call, what its outcome teaches the cluster
(outlier ejection, latency estimates), and for streams the relay after the first byte."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from router.api.chat import ChatRequest
from router.api.sse import DONE, error_event
from router.errors import AttemptFailed, UpstreamRejected
from router.serving import RouterState
from router.telemetry import names as n
from router.telemetry.spans import choices_json, request_attributes, response_attributes
from router.types import AttemptRecord, RequestOutcome, Target, Usage
from router.upstream.cluster import ClusterRuntime
from router.upstream.endpoints import Endpoint
from router.upstream.lease import Lease
from router.upstream.outlier import Ejection
from router.upstream.transport.base import Completion, EventStream, StreamBroken, StreamState, UpstreamCall

log = logging.getLogger(__name__)


@dataclass
class OpenStream:
    """A stream whose first event has arrived; :meth:`Pipeline.relay` sends it and closes everything."""

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


@dataclass(frozen=True)
class StreamTail:
    """What the accounting stage does at a stream's end, handed to the relay as a value: the stream's usage
    (its final usage chunk, or counted), the comment event sent just before ``[DONE]`` (its cost), and the
    settlement once it is over."""

    usage: Callable[[StreamState], Awaitable[Usage]]
    before_done: Callable[[Usage], bytes]
    finish: Callable[[Usage], Awaitable[None]]


class Attempts:
    def __init__(self, state: RouterState) -> None:
        self.state = state

    def _call(
        self,
        chat: ChatRequest,
        cluster: ClusterRuntime,
        endpoint: Endpoint,
        target: Target,
        span: trace.Span,
        outcome: RequestOutcome,
        deadline: float | None,
    ) -> UpstreamCall:
        headers: dict[str, str] = {"x-request-id": outcome.request_id}
        self.state.tracing.propagator.inject(headers, context=trace.set_span_in_context(span))
        # Every request goes out with an output cap: the client's, or the cluster's default (which budgets
        # reserved), never a library's or a server's own default.
        body = chat.body if chat.output_cap is not None else {**chat.body, "max_tokens": cluster.default_max_tokens}
        return UpstreamCall(
            cluster=cluster.name,
            endpoint=endpoint.url,
            upstream_model=target.adapter or cluster.upstream_model,
            body=body,
            stream=chat.stream,
            include_usage=chat.include_usage,
            headers=headers,
            timeouts=cluster.config.timeouts,
            api_key=cluster.api_key,
            remaining_s=None if deadline is None else deadline - time.monotonic(),
        )

    async def attempt(
        self,
        chat: ChatRequest,
        lease: Lease,
        endpoint: Endpoint,
        target: Target,
        outcome: RequestOutcome,
        deadline: float | None,
        retry: bool,
    ) -> Completion | OpenStream:
        """One call to ``endpoint`` of the leased cluster: its answer, or the stream once its first event
        is in; a failure raises (AttemptFailed: try elsewhere; UpstreamRejected: the request's fault)."""
        cluster = lease.cluster
        model = target.adapter or cluster.upstream_model
        record = AttemptRecord(cluster.name, endpoint.label, model, retry=retry)
        outcome.attempts.append(record)
        if retry:
            self.state.metrics.retries.labels(cluster.name, outcome.attempts[-2].error_type or "unknown").inc()
        elif len(outcome.attempts) > 1:
            self.state.metrics.failovers.labels(outcome.attempts[-2].cluster, cluster.name).inc()
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
                    n.ROUTER_ENDPOINT: endpoint.label,
                    n.ROUTER_ATTEMPT: len(outcome.attempts),
                    n.ROUTER_RETRY: retry,
                    n.GEN_AI_REQUEST_STREAM: chat.stream,
                }
            )
            request_attributes(span, chat.body, self.state.settings.capture_content)
        call = self._call(chat, cluster, endpoint, target, span, outcome, deadline)
        started = time.perf_counter()
        endpoint.in_flight += 1
        endpoint.attempts += 1
        try:
            result: Completion | EventStream = (
                await cluster.transport.stream(call) if chat.stream else await cluster.transport.complete(call)
            )
        except AttemptFailed as exc:
            endpoint.in_flight -= 1
            record.outcome, record.error_type = "error", exc.kind
            if exc.timeout and call.deadline_bound:
                # The caller's deadline ran out, not the endpoint: nothing is held against it (a caller
                # with a 1 ms deadline must not be able to eject a replica other tenants depend on).
                span.set_attribute(n.ROUTER_BLAME, "client")
            else:
                ejection = cluster.record_failure(endpoint, exc)
                if ejection is not None:
                    self._ejected(cluster, endpoint, ejection)
                    span.add_event(n.EVENT_EJECTED, {"seconds": ejection.seconds, "count": ejection.count})
            span.set_attribute(n.ROUTER_NEXT_REASON, exc.kind)
            self._end(span, cluster, model, started, exc.kind, None, None, endpoint.shown(exc.message))
            raise
        except UpstreamRejected as exc:
            # The request is at fault, not the endpoint: nothing is held against it, and nothing is
            # forgiven either (an answer the provider never sent is no proof of health).
            endpoint.in_flight -= 1
            if exc.answered:
                cluster.record_success(endpoint)
            span.set_attribute(n.ROUTER_BLAME, "client")
            record.outcome, record.error_type = "rejected", f"http_{exc.status}"
            self._end(span, cluster, model, started, record.error_type, None, None, exc.message)
            raise
        except BaseException:  # cancelled (the client went away)
            endpoint.in_flight -= 1
            record.outcome, record.error_type = "cancelled", "client_disconnected"
            self._end(span, cluster, model, started, record.error_type, None, None, None)
            raise
        elapsed = time.perf_counter() - started
        now = time.monotonic()
        cluster.record_success(endpoint)
        cluster.ttft.observe(now, elapsed)
        outcome.upstream_model = model
        if isinstance(result, Completion):
            endpoint.in_flight -= 1
            cluster.latency.observe(now, elapsed)
            record.outcome = "success"
            outcome.usage = result.usage or Usage()
            if span.is_recording():
                response_attributes(
                    span, result.response_model, result.response_id, result.finish_reasons, result.usage
                )
                if self.state.settings.capture_content:
                    span.set_attribute(n.GEN_AI_OUTPUT_MESSAGES, choices_json(result.payload))
            self._end(span, cluster, model, started, None, result.usage, None, None)
            return result
        outcome.ttft_s = time.perf_counter() - outcome.started
        return OpenStream(result, lease, endpoint, span, started, elapsed, record, call)

    def _ejected(self, cluster: ClusterRuntime, endpoint: Endpoint, ejection: Ejection) -> None:
        self.state.metrics.ejections.labels(cluster.name, endpoint.label, ejection.reason).inc()
        log.warning(
            "cluster %s: endpoint %s %s for %.1f s after %s (ejection %d in a row); last error: %s",
            cluster.name, endpoint.label, cluster.out_word, ejection.seconds, ejection.reason, ejection.count,
            endpoint.last_error,
        )  # fmt: skip

    def _end(
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
        if span.is_recording():
            span.set_attribute(n.ROUTER_OUTCOME, "error" if error_type else "success")
        if error_type is not None:
            span.set_attribute(n.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, message))
        span.end()
        self.state.metrics.record_attempt(
            cluster.provider, model, cluster.name, time.perf_counter() - started, error_type, usage, ttfc
        )

    # -- after the first byte ----------------------------------------------------------------
    async def abandon(self, opened: OpenStream, tail: StreamTail) -> None:
        """Close a stream that will not be relayed (the client went away before its headers were sent)."""
        try:
            await opened.stream.aclose()
            await tail.finish(await tail.usage(opened.stream.state))
        finally:
            opened.endpoint.in_flight -= 1
            opened.lease.release()
            opened.record.outcome, opened.record.error_type = "cancelled", "client_disconnected"
            self._end(
                opened.span,
                opened.cluster,
                opened.record.upstream_model,
                opened.started,
                "client_disconnected",
                None,
                opened.ttfc,
                None,
            )

    async def relay(
        self,
        opened: OpenStream,
        tail: StreamTail,
        write: Callable[[bytes], Awaitable[None]],
        outcome: RequestOutcome,
    ) -> None:
        """Send every event to the client; on a break, end the stream cleanly; always close upstream."""
        error_type: str | None = None
        message: str | None = None
        try:
            async for event in opened.stream.events():
                if event == DONE:
                    await write(tail.before_done(await tail.usage(opened.stream.state)))
                await write(event)
        except StreamBroken as exc:
            error_type, message = exc.kind, opened.endpoint.shown(str(exc))
            outcome.error_type = f"stream_{exc.kind}"
            # The client hears the cluster and the kind of break; the upstream's words go to the span.
            await write(error_event(f"The upstream stream broke ({opened.cluster.name}: {exc.kind})."))
            await write(DONE)
        except BaseException as exc:  # the client went away (reset or cancelled): stop the upstream too
            error_type, message = "client_disconnected", type(exc).__name__
            outcome.error_type = error_type
            raise
        finally:
            await opened.stream.aclose()
            opened.endpoint.in_flight -= 1
            opened.lease.release()
            if error_type is None:
                opened.cluster.latency.observe(time.monotonic(), time.perf_counter() - opened.started)
            elif error_type != "client_disconnected" and not (
                error_type == "timeout" and opened.call.deadline_bound_total
            ):
                # A stream that broke half way: the endpoint failed, though the request cannot be retried
                # (unless the caller's own deadline cut it).
                ejection = opened.cluster.record_failure(
                    opened.endpoint, AttemptFailed(message or "stream broke", kind=error_type, retriable=False)
                )
                if ejection is not None:
                    self._ejected(opened.cluster, opened.endpoint, ejection)
            st = opened.stream.state
            usage = await tail.usage(st)
            outcome.usage = usage
            opened.record.outcome = "error" if error_type else "success"
            opened.record.error_type = error_type
            if opened.span.is_recording():
                response_attributes(opened.span, st.response_model, st.response_id, tuple(st.finish_reasons), usage)
            self._end(
                opened.span,
                opened.cluster,
                opened.record.upstream_model,
                opened.started,
                error_type,
                usage,
                opened.ttfc,
                message,
            )
            await tail.finish(usage)
