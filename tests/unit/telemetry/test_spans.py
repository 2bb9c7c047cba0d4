"""An attempt's GenAI span attributes, read off the request and response bodies; content only when asked."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router.telemetry import names as n
from router.telemetry.spans import choices_json, request_attributes, response_attributes
from router.types import Usage


def _recorded(capture: bool) -> dict[str, object]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("chat m")
    body = {"messages": [{"role": "user", "content": "secret"}], "max_completion_tokens": 9, "temperature": 0}
    request_attributes(span, body, capture)
    response_attributes(span, "m-1", "id-1", ("stop",), Usage(3, 4))
    span.end()
    (done,) = exporter.get_finished_spans()
    return dict(done.attributes or {})


def test_request_and_response_attributes_follow_the_genai_conventions() -> None:
    a = _recorded(capture=False)
    assert a[n.GEN_AI_REQUEST_MAX_TOKENS] == 9
    assert a[n.GEN_AI_REQUEST_TEMPERATURE] == 0.0
    assert (a[n.GEN_AI_RESPONSE_MODEL], a[n.GEN_AI_RESPONSE_ID]) == ("m-1", "id-1")
    assert a[n.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert (a[n.GEN_AI_USAGE_INPUT_TOKENS], a[n.GEN_AI_USAGE_OUTPUT_TOKENS]) == (3, 4)
    assert n.GEN_AI_INPUT_MESSAGES not in a  # prompts stay out of traces unless capture is on


def test_content_is_captured_only_when_asked() -> None:
    assert "secret" in str(_recorded(capture=True)[n.GEN_AI_INPUT_MESSAGES])


def test_the_answers_messages_and_a_body_that_is_not_json() -> None:
    payload = b'{"choices": [{"message": {"role": "assistant", "content": "hi"}}, "junk"]}'
    assert choices_json(payload) == '[{"role":"assistant","content":"hi"}]'
    assert choices_json(b"not json") == ""
