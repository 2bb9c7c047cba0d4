"""OpenTelemetry tracing: configured by the standard ``OTEL_*`` environment variables.

Nothing is exported unless an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or ``OTEL_TRACES_EXPORTER=console`` is set; then the SDK
batches spans to it (sampling from ``OTEL_TRACES_SAMPLER``, resource from ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``). Otherwise a no-op tracer is used: spans cost next to nothing, and the
caller's W3C ``traceparent`` is still continued and propagated upstream.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from router import __version__
from router.errors import PolicyError, PolicyIssue

log = logging.getLogger(__name__)


@dataclass
class Tracing:
    tracer: trace.Tracer
    propagator: TraceContextTextMapPropagator
    provider: TracerProvider | None = None

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


SUPPORTED_PROTOCOLS = ("http/protobuf",)
DEFAULT_SERVICE_NAME = "hybrid-llm-router"


def check_protocol(env: Mapping[str, str], signal: str = "TRACES") -> None:
    """OTLP goes over HTTP with protobuf (the exporter this build ships); asking for another protocol is a
    start-up error, not a silent fallback. ``signal``: TRACES or METRICS."""
    for var in (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = env.get(var, "").strip().lower()
        if value and value not in SUPPORTED_PROTOCOLS:
            raise PolicyError(
                [
                    PolicyIssue(
                        "environment",
                        None,
                        var,
                        f"OTLP protocol {value!r} is not available: this build exports OTLP over HTTP "
                        "(`http/protobuf`); point the endpoint at the collector's HTTP receiver (port 4318)",
                    )
                ]
            )
        if value:
            return  # the signal-specific variable wins over the general one


def resource_from_env(env: Mapping[str, str]) -> Resource:
    """The resource as the specification orders it: ``OTEL_RESOURCE_ATTRIBUTES`` (percent-decoded), then
    ``OTEL_SERVICE_NAME`` over its ``service.name``, then our name only when neither names the service."""
    attributes: dict[str, str] = {}
    for part in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = urllib.parse.unquote(value.strip())
    if env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = env["OTEL_SERVICE_NAME"]
    attributes.setdefault("service.name", DEFAULT_SERVICE_NAME)
    attributes.setdefault("service.version", __version__)
    return Resource.create(attributes)


def exporter_from_env(env: Mapping[str, str]) -> SpanExporter | None:
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    kind = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or kind == "otlp":
        check_protocol(env)
        # Imported here: the exporter pulls in protobuf, which an unconfigured proxy does not need.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return None


def build_tracing(env: Mapping[str, str], provider: TracerProvider | None = None) -> Tracing:
    """A tracer from ``provider`` if given (tests), else from the environment, else a no-op one."""
    if provider is None:
        exporter = exporter_from_env(env)
        if exporter is not None:
            provider = TracerProvider(resource=resource_from_env(env))
            provider.add_span_processor(BatchSpanProcessor(exporter))
            log.info("tracing: exporting spans with %s", type(exporter).__name__)
    tracer = provider.get_tracer("hybrid-llm-router", __version__) if provider else trace.NoOpTracer()
    return Tracing(tracer=tracer, propagator=TraceContextTextMapPropagator(), provider=provider)
