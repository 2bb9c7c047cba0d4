"""An in-process transport for tests (httpx's ``MockTransport`` is the model): a handler answers each call.

The handler receives the :class:`~router.upstream.transport.base.UpstreamCall` the attempt would send and returns a
:class:`~router.upstream.transport.base.Completion` (non-streamed), a list of SSE events (streamed, ending with
``data: [DONE]``; an exception among them is raised there), or raises what a real transport raises
(:class:`~router.errors.AttemptFailed`, :class:`~router.errors.UpstreamRejected`). Pipeline, attempts and
accounting can then be tested without sockets; functional and integration tests keep using real servers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from router.upstream.transport.base import Completion, StreamState, UpstreamCall, observe_event

# A stream is a list of SSE events; an exception in it is raised there (a stream that breaks half way).
Events = Sequence[bytes | BaseException]
Handler = Callable[[UpstreamCall], Awaitable[Completion | Events]]


class MockTransport:
    def __init__(self, handler: Handler, provider: str = "mock") -> None:
        self.handler = handler
        self.provider = provider
        self.calls: list[UpstreamCall] = []

    async def complete(self, call: UpstreamCall) -> Completion:
        self.calls.append(call)
        result = await self.handler(call)
        if not isinstance(result, Completion):
            raise TypeError("the handler answered a non-streamed call with stream events")
        return result

    async def stream(self, call: UpstreamCall) -> MockStream:
        self.calls.append(call)
        result = await self.handler(call)
        if isinstance(result, Completion):
            raise TypeError("the handler answered a streamed call with a completion")
        return MockStream(result, call.include_usage)


class MockStream:
    def __init__(self, events: Events, keep_usage: bool) -> None:
        self._events = events
        self._keep_usage = keep_usage
        self.closed = False
        self.state = StreamState()

    async def events(self) -> AsyncIterator[bytes]:
        for event in self._events:
            if isinstance(event, BaseException):
                raise event
            out = observe_event(self.state, event, self._keep_usage)
            if out is not None:
                yield out

    async def aclose(self) -> None:
        self.closed = True
