from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.trace import NoOpTracer

from router.telemetry.tracing import build_tracing, exporter_from_env


def test_nothing_is_exported_unless_configured() -> None:
    assert exporter_from_env({}) is None
    assert exporter_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}) is None
    assert exporter_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}) is None
    assert isinstance(build_tracing({}).tracer, NoOpTracer)


def test_otlp_and_console_exporters_from_env() -> None:
    otlp = exporter_from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert type(otlp).__name__ == "OTLPSpanExporter"
    assert isinstance(exporter_from_env({"OTEL_TRACES_EXPORTER": "console"}), ConsoleSpanExporter)
    tracing = build_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SERVICE_NAME": "r1"})
    assert isinstance(tracing.provider, TracerProvider)
    assert tracing.provider.resource.attributes["service.name"] == "r1"
    tracing.shutdown()


def test_a_given_provider_wins() -> None:
    provider = TracerProvider()
    assert build_tracing({}, provider).provider is provider
