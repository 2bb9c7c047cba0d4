"""After the first byte: a stream's events relayed to the client as they arrive, and everything closed at
its end, whichever way it ends (done, broken upstream, client gone). The accounting stage's part is handed
in as a value, a :class:`StreamTail`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from opentelemetry import trace

from router.api.sse import DONE, error_event
from router.errors import AttemptFailed
from router.pipeline.attempts import OpenStream, close_unused, end_span, log_ejection
from router.pipeline.rescue import Rescue, Resumed
from router.telemetry import names as n
from router.telemetry.metrics import Metrics
from router.telemetry.spans import response_attributes
from router.types import RequestOutcome, Usage
from router.upstream.transport.base import StreamBroken, StreamState


@dataclass(frozen=True)
class StreamTail:
    """What the accounting stage does at a stream's end, handed to the relay as a value: the stream's usage
    (its final usage chunk, or counted), the comment event sent just before ``[DONE]`` (its cost), and the
    settlement once it is over."""

    usage: Callable[[StreamState], Awaitable[Usage]]
    before_done: Callable[[Usage], bytes]
    finish: Callable[[Usage], Awaitable[None]]


class Relay:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def abandon(self, opened: OpenStream, tail: StreamTail) -> None:
        """Close a stream that will not be relayed (the client went away before its headers were sent)."""
        try:
            await close_unused(opened, self.metrics, n.CLIENT_DISCONNECTED)
        finally:
            await tail.finish(await tail.usage(opened.stream.state))

    async def relay(
        self,
        opened: OpenStream,
        tail: StreamTail,
        write: Callable[[bytes], Awaitable[None]],
        outcome: RequestOutcome,
        rescue: Rescue | None = None,
    ) -> None:
        """Send every event to the client. On a break, go on elsewhere when ``rescue`` can (the client sees
        one stream), else end the stream cleanly with an error event; always close upstream."""
        current, sent = opened, ""
        error_type: str | None = None
        message: str | None = None
        try:
            while True:
                try:
                    async for event in current.stream.events():
                        if event == DONE:
                            await write(tail.before_done(await tail.usage(current.stream.state)))
                        elif current is not opened:  # spliced: the client keeps the stream's first id
                            event = _same_id(event, current.stream.state.response_id, opened.stream.state.response_id)
                        await write(event)
                    return
                except StreamBroken as exc:
                    error_type, message = exc.kind, current.endpoint.shown(str(exc))
                sent += current.stream.state.text()
                resumed = None if rescue is None else await rescue.resume(current, sent)
                self.metrics.stream_rescues.labels(current.cluster.name, resumed.how if resumed else "failed").inc()
                if resumed is None:
                    outcome.error_type = f"stream_{error_type}"
                    # The client hears the cluster and the kind of break; the upstream's words go to the span.
                    await write(error_event(f"The upstream stream broke ({current.cluster.name}: {error_type})."))
                    await write(DONE)
                    return
                await self._close(current, error_type, message, None)
                _spliced(current, resumed, len(sent.encode()))
                current, error_type, message = resumed.stream, None, None
        except BaseException as exc:  # the client went away (reset or cancelled): stop the upstream too
            error_type, message = "client_disconnected", type(exc).__name__
            outcome.error_type = error_type
            raise
        finally:
            usage = await tail.usage(current.stream.state)
            outcome.usage = usage
            await self._close(current, error_type, message, usage)
            await tail.finish(usage)

    async def _close(
        self, opened: OpenStream, error_type: str | None, message: str | None, usage: Usage | None
    ) -> None:
        """One attempt's stream is over: upstream closed, its slot given back, its lesson learnt, its span ended."""
        await opened.stream.aclose()
        opened.endpoint.in_flight -= 1
        opened.lease.release()
        self._learn(opened, error_type, message)
        opened.record.outcome = "error" if error_type else "success"
        opened.record.error_type = error_type
        st = opened.stream.state
        if opened.span.is_recording():
            response_attributes(opened.span, st.response_model, st.response_id, tuple(st.finish_reasons), usage)
        self._end(opened, error_type, usage)

    def _end(self, opened: OpenStream, error_type: str | None, usage: Usage | None) -> None:
        m = opened.record.upstream_model
        end_span(
            self.metrics, opened.span, opened.cluster, m, opened.started, error_type, usage, opened.ttfc, opened.record
        )

    def _learn(self, opened: OpenStream, error_type: str | None, message: str | None) -> None:
        """What the stream's end teaches the cluster: its latency, or a failure of its endpoint."""
        if error_type is None:
            now, elapsed = time.monotonic(), time.perf_counter() - opened.started
            opened.cluster.latency.observe(now, elapsed)
            opened.endpoint.latency.observe(now, elapsed)
        elif error_type != "client_disconnected" and not (error_type == "timeout" and opened.call.deadline_bound_total):
            # A stream that broke half way: the endpoint failed, though the request cannot be retried
            # (unless the caller's own deadline cut it).
            failure = AttemptFailed(message or "stream broke", kind=error_type, retriable=False)
            ejection = opened.cluster.record_failure(opened.endpoint, failure)
            if ejection is not None:
                log_ejection(self.metrics, opened.cluster, opened.endpoint, ejection)


def _spliced(broken: OpenStream, resumed: Resumed, offset: int) -> None:
    """A span event on the request's span: where the stream broke, where it went on, after how many bytes."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(
            n.EVENT_STREAM_SPLICED,
            {
                "from_cluster": broken.cluster.name,
                "from_endpoint": broken.endpoint.label,
                "to_cluster": resumed.stream.cluster.name,
                "how": resumed.how,
                "content_bytes": offset,
            },
        )


def _same_id(event: bytes, new: str, first: str) -> bytes:
    """``event`` with the continuation's completion id replaced by the stream's first one, so that the
    client reads one completion (the model stays the one that wrote each chunk)."""
    if not new or not first or new == first:
        return event
    old, keep = orjson.dumps(new), orjson.dumps(first)
    return event.replace(b'"id":' + old, b'"id":' + keep, 1).replace(b'"id": ' + old, b'"id": ' + keep, 1)
