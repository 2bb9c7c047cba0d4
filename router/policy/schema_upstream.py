"""Policy schema, part 1: how upstream clusters are reached and kept healthy (timeouts, health checks,
outlier detection, cooldowns, circuit breakers, load balancing, endpoints, latency budgets, costs)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, StrictBool, model_validator

from router.policy.schema_base import _Strict


class Timeouts(_Strict):
    """Per-attempt time limits for calls to one cluster."""

    connect_s: float = Field(2.0, gt=0, le=60, description="Seconds to open a TCP connection to an endpoint.")
    first_byte_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds until the first response byte (the whole body when not streaming, the "
        "first SSE event when streaming). A miss counts as a failure and the next target is tried.",
    )
    total_s: float = Field(600.0, gt=0, le=7200, description="Seconds for the whole attempt, including a full stream.")
    first_token_s: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="Streams only: seconds until the first event (the first token); a stream that misses it goes "
        "to the next endpoint or target at once, while a non-streamed answer, which must arrive whole, keeps "
        "`first_byte_s`. Unset: `first_byte_s`.",
    )
    idle_s: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="Seconds a stream may go without an event after its first one; then it has stalled (the "
        "connection open, nothing coming): the endpoint's failure, and the stream ends as broken. At most "
        "`total_s`.",
    )

    @property
    def stream_idle_s(self) -> float:
        """The idle limit in force: never longer than the whole attempt may last."""
        return min(self.idle_s, self.total_s)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.first_byte_s > self.total_s:
            raise ValueError("first_byte_s must not exceed total_s")
        if self.first_token_s is not None and self.first_token_s > self.total_s:
            raise ValueError("first_token_s must not exceed total_s")
        return self


class HealthCheck(_Strict):
    """Active checks of each vLLM endpoint: `GET /health`, and a scrape of vLLM's Prometheus `/metrics`."""

    enabled: StrictBool = Field(
        True,
        description="Probe each endpoint's health path. Off: endpoints are judged by real traffic alone "
        "(outlier detection), for servers without a health path.",
    )
    interval_s: float = Field(5.0, gt=0, le=3600, description="Seconds between `GET /health` probes of an endpoint.")
    timeout_s: float = Field(2.0, gt=0, le=60, description="Seconds a probe (health or metrics) may take.")
    path: str = Field("/health", pattern=r"^/", description="Health path, at the server root (not under `/v1`).")
    unhealthy_threshold: int = Field(
        2, ge=1, le=100, description="Consecutive failed probes before an endpoint is marked down."
    )
    healthy_threshold: int = Field(1, ge=1, le=100, description="Consecutive passed probes before it is up again.")
    metrics_interval_s: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="Seconds between scrapes of `/metrics` (`vllm:num_requests_running`, "
        "`vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`) for load balancing; 0 turns scraping off.",
    )
    metrics_path: str = Field("/metrics", pattern=r"^/", description="Metrics path, at the server root.")


class OutlierDetection(_Strict):
    """Passive outlier detection (Envoy's): eject an endpoint that keeps failing real requests."""

    consecutive_failures: int = Field(
        5,
        ge=1,
        le=10_000,
        description="Consecutive failed attempts (connect error, timeout, 5xx, 429, broken protocol) that "
        "eject an endpoint. A request the upstream rejects as invalid (400, 413, 422) is not a failure.",
    )
    base_ejection_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Ejection time of a first ejection; the n-th ejection in a row lasts n times as long.",
    )
    max_ejection_s: float = Field(300.0, gt=0, le=86_400, description="Cap on one ejection's duration.")
    max_ejection_percent: float = Field(
        50.0,
        ge=0,
        le=100,
        description="Never eject more than this share of a cluster's endpoints at once (one endpoint may "
        "always be ejected). Endpoints marked down by active health checks do not count against it.",
    )
    probation_successes: int = Field(
        3,
        ge=1,
        le=10_000,
        description="After its ejection time an endpoint is re-admitted on probation: a single failure "
        "before this many successes ejects it again at once, for longer. Each `base_ejection_s` without "
        "failures after probation takes one step off the ejection multiplier.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.base_ejection_s > self.max_ejection_s:
            raise ValueError("base_ejection_s must not exceed max_ejection_s")
        return self


class CircuitBreaker(_Strict):
    """Envoy-style circuit breaking: concurrency limits that fail fast, per cluster and proxy process."""

    max_in_flight: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Most upstream requests in flight to this cluster from one proxy process. When it is "
        "full a request waits as pending (below) or spills over to its next fallback at once.",
    )
    max_pending: int = Field(
        0,
        ge=0,
        le=100_000,
        description="Requests that may wait for an in-flight slot when the cluster is full; 0: none wait, "
        "a full cluster spills over at once. Beyond this the request spills over without waiting.",
    )
    pending_timeout_ms: float = Field(
        250.0,
        gt=0,
        le=600_000,
        description="Longest wait for a slot (also bounded by the request's deadline); then the request "
        "spills over to its next fallback, or gets a 503 when there is none.",
    )
    max_retries: int = Field(
        64,
        ge=0,
        le=100_000,
        description="Most retries (second and later attempts of a request) in flight to this cluster at "
        "once. A retry over the limit is not sent here; the request moves to its next fallback.",
    )
    retry_budget_percent: float = Field(
        50.0,
        ge=0,
        le=100,
        description="Retries in flight to this cluster may also be at most this share of its requests in "
        "flight (Envoy's retry budget), so a failing pool is not buried under retries.",
    )
    min_retry_concurrency: int = Field(
        8, ge=0, le=100_000, description="Retries always allowed in flight whatever the budget says."
    )


class LoadBalancing(_Strict):
    """How one request's endpoint is chosen among a vLLM cluster's available endpoints."""

    policy: Literal["least_loaded", "round_robin"] = Field(
        "least_loaded",
        description="`least_loaded`: power of two choices over each endpoint's load, which is its "
        "outstanding requests (the larger of this proxy's in-flight count and the scraped running plus "
        "waiting requests) plus `waiting_weight` × scraped waiting requests plus `kv_cache_weight` × scraped "
        "KV-cache usage (0 to 1). `round_robin`: in turn.",
    )
    waiting_weight: float = Field(
        1.0, ge=0, le=1000, description="Extra load per request waiting in the endpoint's vLLM queue."
    )
    kv_cache_weight: float = Field(
        4.0, ge=0, le=1000, description="Load added by a full KV cache (vLLM preempts requests as it fills)."
    )
    affinity: Literal["none", "session", "prefix"] = Field(
        "none",
        description="Send related requests to the same endpoint so that vLLM's prefix cache is reused. "
        "`session`: requests with the same `x-session-id` header; `prefix`: the same `x-session-id`, or "
        "without one the same system prompt and first two messages. The endpoint is chosen by rendezvous "
        "hashing, so every proxy replica picks the same one without talking to the others.",
    )
    overprovisioning_factor: float = Field(
        1.4,
        ge=1,
        le=100,
        description="Endpoint tiers (Envoy's priority levels): a tier takes min(1, its healthy share × this) "
        "of the traffic and the rest spills to the next tier, so a tier that has lost few endpoints keeps "
        "all of it. A healthy endpoint is one that is up, not ejected and not full.",
    )
    endpoint_capacity: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="An endpoint whose load (its outstanding requests, see `policy`) reaches this is full: "
        "its tier's share spills to the next tier. Unset: endpoints are never full (only the cluster's "
        "`circuit_breaker` limits concurrency).",
    )
    affinity_slack: float = Field(
        4.0,
        ge=0,
        le=100_000,
        description="Give up affinity for a request when the preferred endpoint's load exceeds the least "
        "loaded endpoint's by more than this.",
    )


class EndpointSpec(_Strict):
    """One replica, with the LoRA adapters it serves when not all of the cluster's."""

    url: str = Field(description="Required. Base URL ending in `/v1`, or `emulated`.")
    adapters: list[str] | None = Field(
        None, description="LoRA adapters this replica serves; unset: every adapter the cluster lists."
    )
    tier: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Capacity tier (for example `spot`, `on-demand`, `reserved`). Balancing fills the "
        "cheapest tier first and spills to the next as a tier's endpoints go down, are ejected or are full "
        "(`load_balancing.overprovisioning_factor`, `endpoint_capacity`). Unset: the tier `default`.",
    )
    usd_per_gpu_hour: float | None = Field(
        None,
        gt=0,
        le=10_000,
        description="This replica's price per GPU-hour (a spot price, a reservation); unset: the cluster's "
        "`cost.usd_per_gpu_hour`. Endpoints of one tier share one price; tiers are filled cheapest first.",
    )


class LatencyBudget(_Strict):
    """Soft latency targets: a target predicted to miss one is skipped while another remains."""

    max_ttft_ms: float | None = Field(
        None,
        gt=0,
        le=3_600_000,
        description="Time to first token the route should meet. A target whose windowed p95 time to first "
        "byte (plus its current queueing) exceeds it is skipped in favour of the next; if every target "
        "is predicted to miss, they are tried anyway, fastest prediction first. A stream also waits no "
        "longer than this for its first token on any target but the chain's last, then moves on.",
    )
    max_latency_ms: float | None = Field(
        None,
        gt=0,
        le=3_600_000,
        description="Whole-request time the route should meet, judged by each target's windowed p95 "
        "attempt duration in the same way.",
    )
    hedge_after_ms: float | None = Field(
        None,
        gt=0,
        le=600_000,
        description="Hedging: when the first target has not answered in this long (a stream: its first "
        "token; otherwise the whole answer), the rest of the chain is tried at the same time and the first "
        "answer is kept; the other request is cancelled (and never billed by the router; a provider may "
        "still bill what it had read). At most one hedge per request, and only while the first target's "
        "cluster has retry budget (`circuit_breaker.retry_budget_percent`), so a slow cluster cannot double "
        "its fallback's load. Set it near the first target's usual p95, and prefer fallbacks that cost "
        "little: a hedge to a frontier API may be paid twice.",
    )


def _split_endpoints(value: object) -> object:
    # One list item may expand (through ${VAR}) to several comma-separated URLs.
    if isinstance(value, list):
        out: list[object] = []
        for item in value:
            if isinstance(item, str):
                out.extend(part.strip() for part in item.split(",") if part.strip())
            else:
                out.append(item)
        return out
    return value
