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


def test_the_resource_follows_the_specifications_order() -> None:
    from router.telemetry.tracing import resource_from_env

    assert resource_from_env({}).attributes["service.name"] == "hybrid-llm-router"
    attrs = {"OTEL_RESOURCE_ATTRIBUTES": "service.name=billing-router,service.instance.id=pod%2D7"}
    resource = resource_from_env(attrs).attributes
    assert resource["service.name"] == "billing-router"  # not overridden by our default
    assert resource["service.instance.id"] == "pod-7"
    both = resource_from_env({**attrs, "OTEL_SERVICE_NAME": "named"}).attributes
    assert both["service.name"] == "named"  # OTEL_SERVICE_NAME wins
    assert both["service.instance.id"] == "pod-7"


def test_an_otlp_protocol_this_build_cannot_speak_is_an_error() -> None:
    import pytest

    from router.errors import PolicyError

    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    for var in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        with pytest.raises(PolicyError) as err:
            exporter_from_env({**base, var: "grpc"})
        assert err.value.issues[0].path == var
        assert "http/protobuf" in err.value.issues[0].message
    ok = exporter_from_env({**base, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert type(ok).__name__ == "OTLPSpanExporter"
    # The traces-specific setting wins over the general one.
    both = {**base, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}
    assert type(exporter_from_env(both)).__name__ == "OTLPSpanExporter"
