"""OpenTelemetry tracing: configured by the standard ``OTEL_*`` environment variables.

Nothing is exported unless an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or ``OTEL_TRACES_EXPORTER=console`` is set; then the SDK
batches spans to it (sampling from ``OTEL_TRACES_SAMPLER``, resource from ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``). Otherwise a no-op tracer is used: spans cost next to nothing, and the
caller's W3C ``traceparent`` is still continued and propagated upstream.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from router import __version__

log = logging.getLogger(__name__)


@dataclass
class Tracing:
    tracer: trace.Tracer
    propagator: TraceContextTextMapPropagator
    provider: TracerProvider | None = None

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def exporter_from_env(env: Mapping[str, str]) -> SpanExporter | None:
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    kind = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or kind == "otlp":
        # Imported here: the exporter pulls in protobuf, which an unconfigured proxy does not need.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return None


def build_tracing(env: Mapping[str, str], provider: TracerProvider | None = None) -> Tracing:
    """A tracer from ``provider`` if given (tests), else from the environment, else a no-op one."""
    if provider is None:
        exporter = exporter_from_env(env)
        if exporter is not None:
            resource = Resource.create(
                {"service.name": env.get("OTEL_SERVICE_NAME", "hybrid-llm-router"), "service.version": __version__}
            )
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(BatchSpanProcessor(exporter))
            log.info("tracing: exporting spans with %s", type(exporter).__name__)
    tracer = provider.get_tracer("hybrid-llm-router", __version__) if provider else trace.NoOpTracer()
    return Tracing(tracer=tracer, propagator=TraceContextTextMapPropagator(), provider=provider)
