"""The /metrics registry as OTLP data: counters as monotonic sums, gauges, histograms with per-bucket counts,
the GenAI metrics under their OpenTelemetry names; and when an exporter is made."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum
from opentelemetry.sdk.resources import Resource

from router.errors import PolicyError
from router.telemetry.metrics import Metrics
from router.telemetry.otlp_metrics import export_interval_s, metrics_exporter_from_env, to_metrics_data
from router.types import Usage


def test_the_registry_becomes_otlp_data() -> None:
    m = Metrics()
    m.record_request("general", "pool", 200, False, 0.05, None, Usage(10, 5))
    m.record_request("general", "pool", 200, True, 0.30, 0.02, Usage(10, 5))
    m.record_attempt("vllm", "small-model", "pool", 0.04, None, Usage(10, 5), None)
    m.record_attempt("vllm", "small-model", "pool", 3.0, None, Usage(10, 5), 0.02)
    data = to_metrics_data([m.registry], Resource.create({"service.name": "t"}), 1, 2)
    metrics = {x.name: x for x in data.resource_metrics[0].scope_metrics[0].metrics}
    requests = metrics["router_requests"].data
    assert isinstance(requests, Sum)
    assert requests.is_monotonic
    (point,) = requests.data_points
    assert point.value == 2
    assert dict(point.attributes or {}) == {"route": "general", "cluster": "pool", "status": "200"}
    in_flight = metrics["router_in_flight_requests"].data
    assert isinstance(in_flight, Gauge)
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    assert isinstance(duration.data, Histogram)
    (h,) = duration.data.data_points
    assert dict(h.attributes or {})["gen_ai.provider.name"] == "vllm"
    assert dict(h.attributes or {})["gen_ai.request.model"] == "small-model"
    assert h.count == 2
    assert sum(h.bucket_counts) == 2
    assert len(h.bucket_counts) == len(h.explicit_bounds) + 1
    bounds = list(h.explicit_bounds)
    assert h.bucket_counts[bounds.index(0.04)] == 1  # 0.04 s: in (0.02, 0.04]
    assert h.bucket_counts[bounds.index(5.12)] == 1  # 3 s: in (2.56, 5.12]
    assert h.sum == pytest.approx(3.04)
    assert "gen_ai.client.operation.time_to_first_chunk" in metrics
    assert not [name for name in metrics if name.endswith("_created")]
    encoded = encode_metrics(data)  # what the exporter sends
    assert encoded.resource_metrics[0].scope_metrics[0].metrics


def test_an_exporter_only_when_an_endpoint_is_set() -> None:
    assert metrics_exporter_from_env({}) is None
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert type(metrics_exporter_from_env(base)).__name__ == "OTLPMetricExporter"
    assert metrics_exporter_from_env({**base, "OTEL_METRICS_EXPORTER": "none"}) is None
    with pytest.raises(PolicyError):
        metrics_exporter_from_env({**base, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"})
    assert export_interval_s({}) == 60.0
    assert export_interval_s({"OTEL_METRIC_EXPORT_INTERVAL": "500"}) == 0.5
