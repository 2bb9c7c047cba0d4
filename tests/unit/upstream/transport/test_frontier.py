"""The litellm transport, with litellm's own offline mock responses and exception types."""

from __future__ import annotations

from typing import Any

import pytest

from router.errors import AttemptFailed, UpstreamRejected
from router.policy.schema import Timeouts
from router.upstream.transport.base import UpstreamCall
from router.upstream.transport.frontier import FrontierTransport, import_litellm


@pytest.fixture(scope="module")
def litellm() -> Any:
    return import_litellm()


def call(stream: bool = False, include_usage: bool = False, **body: Any) -> UpstreamCall:
    return UpstreamCall(
        cluster="api",
        endpoint="",
        upstream_model="openai/gpt-4o",
        body={"model": "alias", "messages": [{"role": "user", "content": "hi"}], **body},
        stream=stream,
        include_usage=include_usage,
        headers={},
        timeouts=Timeouts(),
        api_key="sk-test",
    )


async def test_complete_with_mock_response(litellm: Any) -> None:
    t = FrontierTransport(litellm, "openai/gpt-4o", None)
    assert t.provider == "openai"
    c = await t.complete(call(mock_response="hello there"))
    assert b"hello there" in c.payload
    assert c.usage is not None
    assert c.finish_reasons == ("stop",)


@pytest.mark.parametrize("include_usage", [True, False])
async def test_stream_with_mock_response(litellm: Any, include_usage: bool) -> None:
    t = FrontierTransport(litellm, "anthropic/claude-sonnet-4-5", None)
    assert t.provider == "anthropic"
    s = await t.stream(call(stream=True, include_usage=include_usage, mock_response="one two three"))
    events = [e async for e in s.events()]
    await s.aclose()
    assert events[-1] == b"data: [DONE]\n\n"
    assert s.state.usage is not None
    assert any(b'"usage"' in e for e in events) is include_usage
    assert all(b'"cost"' not in e for e in events)


def test_provider_names_follow_semantic_conventions(litellm: Any) -> None:
    assert FrontierTransport(litellm, "vertex_ai/gemini-2.0-flash", None).provider == "gcp.vertex_ai"
    assert FrontierTransport(litellm, "bedrock/anthropic.claude-v2", None).provider == "aws.bedrock"


def test_error_mapping(litellm: Any) -> None:
    t = FrontierTransport(litellm, "openai/gpt-4o", None)
    exc = litellm.exceptions
    rate = t._failure(exc.RateLimitError("slow down", "openai", "gpt-4o"))
    assert isinstance(rate, AttemptFailed)
    assert (rate.kind, rate.retriable) == ("http_429", True)
    bad = t._failure(exc.BadRequestError("bad\nTraceback (most recent call last): ...", "gpt-4o", "openai"))
    assert isinstance(bad, UpstreamRejected)
    assert bad.status == 400
    assert "Traceback" not in bad.message
    timeout = t._failure(exc.Timeout("late", "gpt-4o", "openai"))
    assert isinstance(timeout, AttemptFailed)
    assert timeout.timeout
    assert t._failure(TimeoutError()).kind == "timeout"  # type: ignore[union-attr]  # AttemptFailed here


def test_a_context_window_error_is_marked_for_the_next_target(litellm: Any) -> None:
    t = FrontierTransport(litellm, "openai/gpt-4o", None)
    exc = litellm.exceptions.ContextWindowExceededError("prompt is too long: 210000 tokens", "gpt-4o", "openai")
    failure = t._failure(exc)
    assert isinstance(failure, UpstreamRejected)
    assert failure.context_exceeded
    assert failure.code == "context_length_exceeded"


def test_a_provider_rejection_keeps_its_words_and_code_without_the_librarys_prefixes(litellm: Any) -> None:
    t = FrontierTransport(litellm, "openai/gpt-4o", None)
    body = {"error": {"message": "filtered", "type": "invalid_request_error", "code": "content_filter"}}
    exc = litellm.exceptions.BadRequestError(
        "OpenAIException - The response was filtered.", "gpt-4o", "openai", body=body
    )
    failure = t._failure(exc)
    assert isinstance(failure, UpstreamRejected)
    assert failure.message == "The response was filtered."
    assert failure.code == "content_filter"
