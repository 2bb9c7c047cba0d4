"""The ``/metrics`` instruments over OTLP as well: the same registry, read and pushed every
``OTEL_METRIC_EXPORT_INTERVAL`` by the SDK's OTLP/HTTP metric exporter when an OTLP endpoint is configured.

The request path keeps one set of instruments (prometheus-client's); at export time each family is turned
into OTLP data (cumulative): counters into monotonic sums, gauges into gauges, histograms into explicit-bucket
histograms (prometheus' cumulative buckets differenced). The GenAI client metrics take their OpenTelemetry
names and attribute names (``gen_ai.client.operation.duration``, ``gen_ai.provider.name``); the router's own
keep their Prometheus names. Encoding, transport, retries and the ``OTEL_EXPORTER_OTLP_*`` settings are the
SDK exporter's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.registry import Collector

from router import __version__
from router.telemetry import names as n
from router.telemetry.tracing import check_protocol

DEFAULT_INTERVAL_S = 60.0
# The GenAI client metrics under their semantic-convention names (and units).
OTEL_NAMES = {
    n.M_GENAI_TOKEN_USAGE: ("gen_ai.client.token.usage", "{token}"),
    n.M_GENAI_DURATION: ("gen_ai.client.operation.duration", "s"),
    n.M_GENAI_TTFC: ("gen_ai.client.operation.time_to_first_chunk", "s"),
}
OTEL_ATTRIBUTES = {
    "gen_ai_operation_name": "gen_ai.operation.name",
    "gen_ai_provider_name": "gen_ai.provider.name",
    "gen_ai_request_model": "gen_ai.request.model",
    "gen_ai_token_type": "gen_ai.token.type",
    "router_cluster": "router.cluster",
    "error_type": "error.type",
}


def metrics_exporter_from_env(env: Mapping[str, str]) -> MetricExporter | None:
    """An OTLP/HTTP metric exporter when an OTLP endpoint is set (and metrics are not turned off)."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if env.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "none":
        return None
    if not (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")):
        return None
    check_protocol(env, "METRICS")
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def export_interval_s(env: Mapping[str, str]) -> float:
    raw = env.get("OTEL_METRIC_EXPORT_INTERVAL", "")
    try:
        return max(0.1, float(raw) / 1000) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S


def _points(
    family: Any, start_ns: int, now_ns: int, rename: bool
) -> tuple[list[NumberDataPoint], list[HistogramDataPoint]]:
    numbers: list[NumberDataPoint] = []
    buckets: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for s in family.samples:
        labels = {(OTEL_ATTRIBUTES.get(k, k) if rename else k): v for k, v in s.labels.items() if k != "le"}
        if family.type == "histogram":
            h = buckets.setdefault(tuple(sorted(labels.items())), {"le": [], "count": 0, "sum": 0.0})
            if s.name.endswith("_bucket"):
                h["le"].append((float(s.labels["le"]), int(s.value)))
            elif s.name.endswith("_count"):
                h["count"] = int(s.value)
            elif s.name.endswith("_sum"):
                h["sum"] = float(s.value)
            continue
        if s.name.endswith("_created"):
            continue
        numbers.append(NumberDataPoint(labels, start_ns, now_ns, s.value))
    histograms = []
    for key, h in buckets.items():
        les = sorted(h["le"])
        bounds = [le for le, _ in les if not math.isinf(le)]
        cumulative = [c for _, c in les]
        counts = [c - (cumulative[i - 1] if i else 0) for i, c in enumerate(cumulative)]
        histograms.append(
            HistogramDataPoint(dict(key), start_ns, now_ns, h["count"], h["sum"], counts, bounds, None, None)  # type: ignore[arg-type]
        )
    return numbers, histograms


def to_metrics_data(collectors: Iterable[Collector], resource: Resource, start_ns: int, now_ns: int) -> MetricsData:
    """Every family of the registry as OTLP metric data (cumulative since ``start_ns``)."""
    metrics: list[Metric] = []
    for collector in collectors:
        for family in collector.collect():
            name, unit = OTEL_NAMES.get(family.name, (family.name, family.unit or ""))
            numbers, histograms = _points(family, start_ns, now_ns, family.name in OTEL_NAMES)
            data: Sum | Gauge | Histogram
            if family.type == "histogram":
                if not histograms:
                    continue
                data = Histogram(histograms, AggregationTemporality.CUMULATIVE)
            elif not numbers:
                continue
            elif family.type == "counter":
                data = Sum(numbers, AggregationTemporality.CUMULATIVE, is_monotonic=True)
            else:
                data = Gauge(numbers)
            metrics.append(Metric(name, family.documentation, unit, data))
    scope = ScopeMetrics(InstrumentationScope("hybrid-llm-router", __version__), metrics, "")
    return MetricsData([ResourceMetrics(resource, [scope], "")])
