"""The GenAI client metrics of the OpenTelemetry semantic conventions, as Prometheus histograms."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from router.telemetry import names as n

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30)
# Bucket boundaries advised by the GenAI semantic conventions.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
GENAI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "router_cluster")


def genai_histograms(registry: CollectorRegistry) -> tuple[Histogram, Histogram, Histogram]:
    """Token usage, operation duration and time to first chunk, per operation, provider, model, cluster."""
    tokens = Histogram(
        n.M_GENAI_TOKEN_USAGE,
        "GenAI: tokens used per operation (gen_ai.client.token.usage).",
        (*GENAI_LABELS, "gen_ai_token_type"),
        buckets=TOKEN_BUCKETS,
        registry=registry,
    )
    duration = Histogram(
        n.M_GENAI_DURATION,
        "GenAI: upstream operation duration (gen_ai.client.operation.duration).",
        (*GENAI_LABELS, "error_type"),
        buckets=GENAI_DURATION_BUCKETS,
        registry=registry,
    )
    ttfc = Histogram(
        n.M_GENAI_TTFC,
        "GenAI: time to the first streamed chunk (gen_ai.client.operation.time_to_first_chunk).",
        GENAI_LABELS,
        buckets=TTFT_BUCKETS,
        registry=registry,
    )
    return tokens, duration, ttfc
