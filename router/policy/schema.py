"""Policy format, version 1: the pydantic schema of one policy file.

Every field has a description and either a default or is marked required; every number has bounds.
``policies/REFERENCE.md`` is generated from this module (``router policy reference``).
Cross-references between files (routes naming clusters, fallback cycles, ...) are checked in
:mod:`router.policy.compile`, after all files are read.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
EMULATED = "emulated"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.first_byte_s > self.total_s:
            raise ValueError("first_byte_s must not exceed total_s")
        return self


class HealthCheck(_Strict):
    """Active checks of each vLLM endpoint: `GET /health`, and a scrape of vLLM's Prometheus `/metrics`."""

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


class Cooldown(_Strict):
    """How a frontier cluster backs off after its provider fails (429 and 5xx)."""

    consecutive_failures: int = Field(
        3,
        ge=1,
        le=10_000,
        description="Consecutive failures (timeouts, connect errors, 5xx) that start a cooldown. A 429 "
        "starts one at once.",
    )
    base_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Cooldown when the provider sends no `Retry-After`; the n-th cooldown in a row lasts n "
        "times as long. A `Retry-After` (or `retry-after-ms`) from the provider sets the cooldown instead.",
    )
    max_s: float = Field(120.0, gt=0, le=86_400, description="Cap on one cooldown, `Retry-After` included.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.base_s > self.max_s:
            raise ValueError("base_s must not exceed max_s")
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


class LatencyBudget(_Strict):
    """Soft latency targets: a target predicted to miss one is skipped while another remains."""

    max_ttft_ms: float | None = Field(
        None,
        gt=0,
        le=3_600_000,
        description="Time to first token the route should meet. A target whose windowed p95 time to first "
        "byte (plus its current queueing) exceeds it is skipped in favour of the next; if every target "
        "is predicted to miss, they are tried anyway, fastest prediction first.",
    )
    max_latency_ms: float | None = Field(
        None,
        gt=0,
        le=3_600_000,
        description="Whole-request time the route should meet, judged by each target's windowed p95 "
        "attempt duration in the same way.",
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


class Price(_Strict):
    """A price per million tokens, in US dollars."""

    input_usd_per_mtok: float = Field(ge=0, le=100_000, description="Required. Dollars per million prompt tokens.")
    output_usd_per_mtok: float = Field(ge=0, le=100_000, description="Required. Dollars per million generated tokens.")


class SelfHostedCost(_Strict):
    """What a vLLM pool's tokens cost: GPU time divided by throughput at good utilisation."""

    usd_per_gpu_hour: float = Field(2.5, gt=0, le=10_000, description="Dollars per GPU-hour (rented or amortised).")
    gpus_per_replica: int = Field(1, ge=1, le=1024, description="GPUs behind one endpoint.")
    input_tokens_per_second: float = Field(
        100_000.0,
        gt=0,
        le=1e9,
        description="Prompt tokens one replica prefills per second at good utilisation (measure yours: "
        "vLLM's `vllm:prompt_tokens` rate at a busy hour).",
    )
    output_tokens_per_second: float = Field(
        20_000.0,
        gt=0,
        le=1e9,
        description="Tokens one replica generates per second across its batch at good utilisation "
        "(`vllm:generation_tokens` rate). The defaults are an 8B model on one H100: about 3.5 cents per "
        "million generated tokens.",
    )


class VllmCluster(_Strict):
    """A pool of vLLM (or any OpenAI-compatible) replicas called directly over HTTP."""

    kind: Literal["vllm"] = Field(description="Cluster kind: `vllm` for self-hosted OpenAI-compatible pools.")
    description: str = Field("", description="Free text for humans.")
    endpoints: list[str | EndpointSpec] = Field(
        min_length=1,
        description="Required. The replicas: base URLs ending in `/v1` (for example `http://vllm-0:8000/v1`), "
        "or `{url, adapters}` objects for replicas that serve only some of the cluster's adapters. A URL item "
        "may expand through `${VAR}` to several comma-separated URLs. The word `emulated` stands for a local "
        "emulated replica, started only by `router serve --emulate-missing` (the quick start).",
    )
    model: str = Field(min_length=1, description="Required. The model name the replicas serve (vLLM `--model`).")
    adapters: list[str] = Field(
        default_factory=list,
        description="LoRA adapters the replicas serve (vLLM `--lora-modules` names). A route naming one "
        "sends it as the request's `model`.",
    )
    api_key_env: str | None = Field(
        None, description="Environment variable holding the replicas' API key (vLLM `--api-key`), if any."
    )
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Per-attempt time limits.")
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker, description="Concurrency limits.")
    max_attempts: int = Field(
        2,
        ge=1,
        le=100,
        description="Endpoints of this cluster one request may try (each a different one) before it moves "
        "to its next fallback.",
    )
    health_check: HealthCheck = Field(default_factory=HealthCheck, description="Active health checks.")
    outlier_detection: OutlierDetection = Field(
        default_factory=OutlierDetection, description="Passive ejection of failing endpoints."
    )
    load_balancing: LoadBalancing = Field(default_factory=LoadBalancing, description="Endpoint choice.")
    cost: SelfHostedCost = Field(default_factory=SelfHostedCost, description="What this pool's tokens cost.")
    fallbacks: list[str] = Field(
        default_factory=list,
        description="Clusters to try, in order, when this one fails before the first byte and the route "
        "or alias names no fallbacks of its own. Followed transitively; cycles are errors.",
    )

    @field_validator("endpoints", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _split_endpoints(value)

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, value: list[str | EndpointSpec]) -> list[str | EndpointSpec]:
        out: list[str | EndpointSpec] = []
        for item in value:
            url = item if isinstance(item, str) else item.url
            if url != EMULATED and not re.match(r"^https?://[^/\s]+", url):
                raise ValueError(f"endpoint {url!r} is not an http(s) URL nor `{EMULATED}`")
            url = url.rstrip("/")
            out.append(url if isinstance(item, str) else item.model_copy(update={"url": url}))
        return out

    @model_validator(mode="after")
    def _endpoint_adapters(self) -> Self:
        for item in self.endpoints:
            if isinstance(item, EndpointSpec):
                unknown = sorted(set(item.adapters or ()) - set(self.adapters))
                if unknown:
                    raise ValueError(f"endpoint {item.url!r} serves adapters the cluster does not list: {unknown}")
        return self

    def endpoint_specs(self) -> list[EndpointSpec]:
        """Every endpoint as a spec, its adapters filled in."""
        return [
            EndpointSpec(url=e, adapters=list(self.adapters))
            if isinstance(e, str)
            else e.model_copy(update={"adapters": list(self.adapters if e.adapters is None else e.adapters)})
            for e in self.endpoints
        ]


class FrontierCluster(_Strict):
    """A frontier API model reached through litellm (provider translation, prices, token counts)."""

    kind: Literal["frontier"] = Field(description="Cluster kind: `frontier` for provider APIs via litellm.")
    description: str = Field("", description="Free text for humans.")
    model: str = Field(min_length=1, description="Required. A litellm model string, for example `openai/gpt-4o`.")
    api_key_env: str | None = Field(
        None,
        description="Environment variable holding the API key. Unset: litellm's own default for the "
        "provider (for example OPENAI_API_KEY). When the variable is empty the cluster is unconfigured: "
        "`--emulate-missing` then serves it from a local emulator, otherwise it is skipped.",
    )
    api_base: str | None = Field(None, description="Override of the provider's base URL (a gateway, Azure, ...).")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Per-attempt time limits.")
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker, description="Concurrency limits.")
    cooldown: Cooldown = Field(default_factory=Cooldown, description="Back-off after provider failures.")
    price: Price | None = Field(
        None, description="Override of litellm's price for this model (a negotiated rate, a gateway)."
    )
    fallbacks: list[str] = Field(
        default_factory=list, description="Default fallback clusters (see the vLLM cluster's field)."
    )


Cluster = Annotated[VllmCluster | FrontierCluster, Field(discriminator="kind")]


class ModelAlias(_Strict):
    """A model name clients may send. Either pinned to one cluster or routed by the rules."""

    description: str = Field("", description="Shown in `GET /v1/models` documentation; free text.")
    cluster: str | None = Field(
        None, description="Pin the alias to this cluster: no classification or rules on this path."
    )
    adapter: str | None = Field(None, description="With `cluster`: the LoRA adapter to request.")
    fallbacks: list[str] | None = Field(
        None, description="With `cluster`: fallback clusters, overriding the cluster's own `fallbacks`."
    )
    default_route: str | None = Field(
        None,
        description="For a rule-routed alias: the route used when no rule matches. Exactly one of "
        "`cluster` and `default_route` must be set.",
    )
    latency: LatencyBudget | None = Field(None, description="With `cluster`: latency targets (see `LatencyBudget`).")

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.cluster is None) == (self.default_route is None):
            raise ValueError("set exactly one of `cluster` (pinned) or `default_route` (routed by rules)")
        if self.cluster is None and (
            self.adapter is not None or self.fallbacks is not None or self.latency is not None
        ):
            raise ValueError(
                "`adapter`, `fallbacks` and `latency` go with `cluster`; on routed aliases, set them on routes"
            )
        return self


class Match(_Strict):
    """Conditions of a rule. All set conditions must hold; unset ones match anything."""

    models: list[str] | None = Field(None, description="Requested aliases this rule applies to.")
    tenants: list[str] | None = Field(None, description="Tenants this rule applies to.")
    headers: dict[str, str] | None = Field(
        None,
        description="Request headers (case-insensitive names) and the exact value each must have; "
        "the value `*` only requires the header to be present.",
    )
    min_prompt_tokens: int | None = Field(None, ge=0, le=10_000_000, description="Estimated prompt tokens ≥ this.")
    max_prompt_tokens: int | None = Field(None, ge=0, le=10_000_000, description="Estimated prompt tokens ≤ this.")
    has_tools: bool | None = Field(None, description="The request carries `tools` (or `functions`) or not.")
    has_images: bool | None = Field(None, description="A message carries an image part or not.")
    stream: bool | None = Field(None, description="The request is streaming or not.")
    tasks: list[str] | None = Field(
        None,
        min_length=1,
        description="Classified task is one of these (the twelve trained labels or the policy's own "
        "`classifier.tasks`). Holds only when the request was classified with confidence at least "
        "`min_task_confidence` (default: `classifier.min_confidence`); a request that was not "
        "classified (encoder failure) never matches a task condition.",
    )
    min_task_confidence: float | None = Field(
        None, ge=0, le=1, description="With `tasks`: the confidence the task needs; overrides the policy default."
    )
    max_task_confidence: float | None = Field(
        None, ge=0, le=1, description="Task confidence ≤ this (for rules about uncertain classifications)."
    )
    min_complexity: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Complexity ≥ this: the estimated probability that a small model falls short. "
        "See the README for how to pick it from a target share of frontier calls.",
    )
    max_complexity: float | None = Field(None, ge=0, le=1, description="Complexity ≤ this.")
    regex: str | None = Field(
        None,
        min_length=1,
        description="A Python regular expression searched (not anchored) in the last user message; "
        "prefix it with `(?i)` for case-insensitive.",
    )
    keywords: list[str] | None = Field(
        None,
        min_length=1,
        description="Any of these words or phrases occurs in the last user message (case-insensitive, whole words).",
    )

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @field_validator("keywords")
    @classmethod
    def _words(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not w.strip() for w in value):
            raise ValueError("keywords must not be empty")
        return value

    @field_validator("headers")
    @classmethod
    def _lower(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else {k.lower(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _range(self) -> Self:
        lo, hi = self.min_prompt_tokens, self.max_prompt_tokens
        for lo_name, hi_name in (
            ("min_prompt_tokens", "max_prompt_tokens"),
            ("min_task_confidence", "max_task_confidence"),
            ("min_complexity", "max_complexity"),
        ):
            lo, hi = getattr(self, lo_name), getattr(self, hi_name)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{lo_name} is greater than {hi_name}")
        if self.min_task_confidence is not None and self.tasks is None:
            raise ValueError("min_task_confidence needs `tasks`")
        return self

    @property
    def uses_classifier(self) -> bool:
        return any(
            v is not None for v in (self.tasks, self.max_task_confidence, self.min_complexity, self.max_complexity)
        )


class Route(_Strict):
    """One rule: where matching requests go, and where they go next if that fails."""

    name: str = Field(pattern=NAME, description="Required. Unique rule name; shown in headers, spans and metrics.")
    description: str = Field("", description="Why this rule exists; shown as the decision's reason.")
    match: Match = Field(default_factory=Match, description="Conditions; an empty match matches everything.")
    priority: int = Field(
        0,
        ge=-1000,
        le=1000,
        description="Rules are evaluated by priority, highest first; equal priorities keep file order "
        "(files in file-name order). The first rule that matches wins.",
    )
    target_only: bool = Field(
        False,
        description="The route is only a destination (an alias's `default_route` or the classifier's "
        "`low_confidence_route`) and is never evaluated as a rule; it must not set `match`.",
    )
    cluster: str = Field(description="Required. The target cluster.")
    adapter: str | None = Field(None, description="LoRA adapter to request on the target (vLLM clusters).")
    fallbacks: list[str] | None = Field(
        None, description="Fallback clusters in order; unset: the target cluster's own `fallbacks`."
    )
    latency: LatencyBudget | None = Field(None, description="Latency targets (see `LatencyBudget`).")

    @model_validator(mode="after")
    def _target_only(self) -> Self:
        if self.target_only and "match" in self.model_fields_set:
            raise ValueError("a `target_only` route is never evaluated: remove its `match`")
        return self


class CustomTask(_Strict):
    """A task label of the policy's own, defined by example utterances (nearest centroid)."""

    description: str = Field("", description="What the task is; shown in explain output.")
    examples: list[str] = Field(
        min_length=3,
        description="Required. At least three example user messages. Their embeddings are averaged into a "
        "centroid; a request whose embedding has cosine similarity ≥ `min_similarity` with it takes this "
        "label, overriding the trained head (the most similar custom task wins).",
    )
    min_similarity: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Cosine similarity to the centroid needed to take this label; the similarity is then "
        "the reported task confidence.",
    )

    @field_validator("examples")
    @classmethod
    def _nonempty(cls, value: list[str]) -> list[str]:
        if any(not e.strip() for e in value):
            raise ValueError("examples must not be empty")
        return value


class ClassifierSettings(_Strict):
    """How requests on rule-routed aliases are classified (task label, confidence, complexity)."""

    enabled: bool = Field(
        True,
        description="Classify requests on rule-routed aliases. Off: rules with task or complexity "
        "conditions never match.",
    )
    min_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Task confidence below this is *low confidence*: `tasks` conditions do not hold "
        "(unless a rule sets its own `min_task_confidence`) and, when no rule matches, the request "
        "takes `low_confidence_route` instead of its alias's default route.",
    )
    low_confidence_route: str | None = Field(
        None, description="The route for low-confidence requests that no rule matched (a route name)."
    )
    tasks: dict[Annotated[str, Field(pattern=NAME)], CustomTask] = Field(
        default_factory=dict, description="Task labels of the policy's own, by name (see `CustomTask`)."
    )


class Auth(_Strict):
    """Who may call: API keys (hashed, in `ROUTER_KEYS_FILE` or `ROUTER_API_KEYS`) map to tenants."""

    anonymous: bool = Field(
        False,
        description="Serve requests without a known key, as `anonymous_tenant` (budgets and rules apply to it "
        "like to any tenant). A known key still selects its own tenant. Off: a missing or unknown key gets a "
        "401.",
    )
    anonymous_tenant: str = Field("anonymous", pattern=NAME, description="The tenant of anonymous requests.")
    admin_without_key: bool = Field(
        False,
        description="Let anyone read and use the admin API (`/v1/admin/*`). For a local quick start only; "
        "otherwise the admin API needs a key marked `admin: true`.",
    )


class Costs(_Strict):
    """How cost and savings are counted."""

    baseline_model: str = Field(
        "openai/gpt-4o",
        min_length=1,
        description="The reference frontier model (a litellm model string): every request's baseline cost is "
        "what its tokens would have cost there, so savings are measured per request.",
    )
    baseline_price: Price | None = Field(None, description="Override of litellm's price for the baseline model.")
    default_max_tokens: int = Field(
        4096,
        ge=1,
        le=10_000_000,
        description="Completion tokens reserved against budgets for a request that sets no `max_tokens` "
        "(the reservation is settled to the real usage afterwards).",
    )


class Budget(_Strict):
    """A cap on spend, tokens or requests, per tenant, per route, or both, shared by all proxy replicas."""

    name: str = Field(pattern=NAME, description="Required. Unique budget name; shown in errors and metrics.")
    description: str = Field("", description="Free text for humans.")
    tenant: str | None = Field(
        None,
        description="The tenant it applies to; `*`: every tenant, each with a budget of its own. Unset (and "
        "no `route`): all requests together.",
    )
    route: str | None = Field(
        None, description="The route it applies to (a route name, or `model:<alias>` for pinned aliases); `*`: each."
    )
    usd_per_day: float | None = Field(None, gt=0, le=1e9, description="Dollars per UTC day.")
    usd_per_month: float | None = Field(None, gt=0, le=1e10, description="Dollars per UTC calendar month.")
    tokens_per_minute: int | None = Field(
        None, ge=1, le=10_000_000_000, description="Prompt plus completion tokens per UTC minute."
    )
    requests_per_minute: int | None = Field(None, ge=1, le=100_000_000, description="Requests per UTC minute.")
    on_exhausted: Literal["deny", "downgrade"] = Field(
        "deny",
        description="`deny`: a 429 naming the budget, with `Retry-After` until its window resets. `downgrade`: "
        "send the request to `downgrade_to` (a self-hosted pool) instead; its cost is still counted.",
    )
    downgrade_to: str | None = Field(None, description="With `downgrade`: the vLLM cluster to send requests to.")
    on_state_unavailable: Literal["open", "closed"] = Field(
        "open",
        description="When the shared state (Redis) cannot be reached: `open` serves and counts in this process, "
        "adding the counts to Redis when it is back; `closed` answers 503.",
    )

    @model_validator(mode="after")
    def _sane(self) -> Self:
        limits = (self.usd_per_day, self.usd_per_month, self.tokens_per_minute, self.requests_per_minute)
        if all(v is None for v in limits):
            raise ValueError(
                "a budget needs at least one of usd_per_day, usd_per_month, tokens_per_minute, requests_per_minute"
            )
        if (self.on_exhausted == "downgrade") != (self.downgrade_to is not None):
            raise ValueError("`downgrade_to` goes with `on_exhausted: downgrade`, and it needs one")
        return self


class ResponseCache(_Strict):
    """Exact-match cache of deterministic answers (temperature 0 or a seed), per tenant, in the state store."""

    enabled: bool = Field(False, description="Off by default.")
    ttl_s: float = Field(600.0, gt=0, le=30 * 86_400, description="Seconds an answer is kept.")
    max_body_bytes: int = Field(1_048_576, ge=1, le=64 * 1_048_576, description="Larger answers are not cached.")


class PolicyFile(_Strict):
    """One policy file. Several files in a directory merge into one policy (in file-name order)."""

    version: Literal[1] = Field(description="Required. Policy format version; this router reads version 1.")
    clusters: dict[Annotated[str, Field(pattern=NAME)], Cluster] = Field(
        default_factory=dict, description="Upstream clusters by name."
    )
    models: dict[Annotated[str, Field(pattern=NAME)], ModelAlias] = Field(
        default_factory=dict, description="Model aliases clients may send, by name."
    )
    classifier: ClassifierSettings | None = Field(
        None, description="Classification settings; at most one file of a policy may set them."
    )
    routes: list[Route] = Field(
        default_factory=list,
        description="Rules, evaluated by `priority` (highest first), then in order (files in file-name "
        "order); the first match wins.",
    )
    auth: Auth | None = Field(None, description="API keys and tenants; at most one file of a policy may set it.")
    costs: Costs | None = Field(None, description="Cost accounting; at most one file may set it.")
    budgets: list[Budget] = Field(default_factory=list, description="Budgets (see `Budget`); names unique.")
    cache: ResponseCache | None = Field(None, description="Response cache; at most one file may set it.")
