"""Policy schema, part 2: the clusters, one kind each: a self-hosted pool (``vllm``) or a frontier API
through litellm (``frontier``). Their parts (timeouts, health checks, breakers, ...) are part 1,
:mod:`router.policy.schema_upstream`."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import Field, StrictBool, field_validator, model_validator

from router.policy.schema_backoff import Cooldown, Retry
from router.policy.schema_base import DEFAULT_TIER, EMULATED, _Strict
from router.policy.schema_prices import Price, SelfHostedCost
from router.policy.schema_upstream import (
    CircuitBreaker,
    EndpointSpec,
    HealthCheck,
    LoadBalancing,
    OutlierDetection,
    Timeouts,
    _split_endpoints,
)

OutputCap = Annotated[
    int | None,
    Field(
        ge=1,
        le=10_000_000,
        description="The output cap sent as `max_tokens` when a request sets neither `max_tokens` nor "
        "`max_completion_tokens` (budgets reserve it). Unset: `costs.default_max_tokens`. Required on frontier "
        "clusters whose provider requires a cap (Anthropic models), so the policy, not a library default, "
        "decides it.",
    ),
]


class VllmCluster(_Strict):
    """A pool of vLLM (or any OpenAI-compatible) replicas called directly over HTTP."""

    kind: Literal["vllm", "openai"] = Field(
        description="Cluster kind: `vllm` for self-hosted vLLM pools; `openai` for any other OpenAI-compatible "
        "server (llama.cpp, TGI, SGLang, a gateway): the same pool, but vLLM's extra request fields are not "
        "sent to it, and its `GET /health` probes and `/metrics` scrapes are off unless `health_check` is set."
    )
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
    default_max_tokens: OutputCap = None
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Per-attempt time limits.")
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker, description="Concurrency limits.")
    max_attempts: int = Field(
        2,
        ge=1,
        le=100,
        description="Endpoints of this cluster one request may try (each a different one) before it moves "
        "to its next fallback.",
    )
    retry: Retry = Field(default_factory=Retry, description="Retrying the endpoint that just failed.")
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

    @model_validator(mode="before")
    @classmethod
    def _openai_health(cls, data: object) -> object:
        # Another OpenAI-compatible server has neither vLLM's /health nor its /metrics, unless told so.
        if isinstance(data, dict) and data.get("kind") == "openai" and "health_check" not in data:
            return {**data, "health_check": {"enabled": False, "metrics_interval_s": 0}}
        return data

    @model_validator(mode="after")
    def _endpoint_adapters(self) -> Self:
        for item in self.endpoints:
            if isinstance(item, EndpointSpec):
                unknown = sorted(set(item.adapters or ()) - set(self.adapters))
                if unknown:
                    raise ValueError(f"endpoint {item.url!r} serves adapters the cluster does not list: {unknown}")
        return self

    @model_validator(mode="after")
    def _tier_prices(self) -> Self:
        prices: dict[str, float] = {}
        for spec in self.endpoint_specs():
            tier, price = spec.tier or DEFAULT_TIER, spec.usd_per_gpu_hour or self.cost.usd_per_gpu_hour
            if prices.setdefault(tier, price) != price:
                raise ValueError(
                    f"tier {tier!r} has two prices ({prices[tier]} and {price} per GPU-hour): "
                    "give each price a tier of its own"
                )
        return self

    def tiers(self) -> list[str]:
        """The cluster's tiers, cheapest first (equal prices: in the order the endpoints list them)."""
        seen: dict[str, float] = {}
        for spec in self.endpoint_specs():
            seen.setdefault(spec.tier or DEFAULT_TIER, spec.usd_per_gpu_hour or self.cost.usd_per_gpu_hour)
        return sorted(seen, key=lambda t: seen[t])  # stable: equal prices keep their order

    def tier_of(self, spec: EndpointSpec) -> tuple[int, str]:
        """An endpoint's tier: its rank (0: the cheapest) and name."""
        name = spec.tier or DEFAULT_TIER
        return self.tiers().index(name), name

    def endpoint_specs(self) -> list[EndpointSpec]:
        """Every endpoint as a spec, its adapters filled in."""
        return [
            EndpointSpec(url=e, adapters=list(self.adapters))
            if isinstance(e, str)
            else e.model_copy(update={"adapters": list(self.adapters if e.adapters is None else e.adapters)})
            for e in self.endpoints
        ]

    def serves_adapter(self, adapter: str | None) -> str | None:
        """``adapter`` if this cluster serves it (a LoRA of its model), else None: its base model answers."""
        return adapter if adapter in self.adapters else None


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
    default_max_tokens: OutputCap = None
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Per-attempt time limits.")
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker, description="Concurrency limits.")
    cooldown: Cooldown = Field(default_factory=Cooldown, description="Back-off after provider failures.")
    prefill: StrictBool = Field(
        False,
        description="The provider continues a conversation whose last message is a partial assistant answer "
        "(Anthropic's models do): a stream that broke elsewhere after its first byte may be continued here. "
        "Leave it off for providers that would start the answer over (the client would read it twice).",
    )
    retry: Retry = Field(default_factory=Retry, description="Retrying the provider after a failure.")
    price: Price | None = Field(
        None, description="Override of litellm's price for this model (a negotiated rate, a gateway)."
    )
    fallbacks: list[str] = Field(
        default_factory=list, description="Default fallback clusters (see the vLLM cluster's field)."
    )

    def serves_adapter(self, adapter: str | None) -> None:
        """None: a provider's model has no adapters of ours."""
        return


Cluster = Annotated[VllmCluster | FrontierCluster, Field(discriminator="kind")]


def requires_output_cap(model: str) -> bool:
    """Whether the provider of a litellm model string refuses requests without `max_tokens` (Anthropic's
    Messages API, also through Bedrock and Vertex AI); litellm would otherwise pick a cap of its own."""
    m = model.lower()
    return m.startswith("anthropic/") or "claude" in m
