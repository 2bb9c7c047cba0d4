"""Policy schema, part 2: who may call and what it may spend (auth, costs, budgets, the response cache)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, StrictBool, model_validator

from router.policy.schema_base import NAME, _Strict
from router.policy.schema_prices import Price


class Auth(_Strict):
    """Who may call: API keys (hashed, in `ROUTER_KEYS_FILE` or `ROUTER_API_KEYS`) map to tenants."""

    anonymous: StrictBool = Field(
        False,
        description="Serve requests without a known key, as `anonymous_tenant` (budgets and rules apply to it "
        "like to any tenant). A known key still selects its own tenant. Off: a missing or unknown key gets a "
        "401.",
    )
    anonymous_tenant: str = Field("anonymous", pattern=NAME, description="The tenant of anonymous requests.")
    admin_without_key: StrictBool = Field(
        False,
        description="Let anyone read and use the admin API (`/v1/admin/*`), `/metrics` and the details of "
        "`/readyz`. For a local quick start only; otherwise they need a key marked `admin: true` (or the "
        "separate admin listener, `ROUTER_ADMIN_PORT`).",
    )
    explain: Literal["admin", "tenants"] = Field(
        "admin",
        description="Who may call `POST /v1/route/explain`. `admin`: admin keys only (the full trace: files, "
        "lines, every rule's conditions). `tenants`: any caller, who gets a tenant's view: the classification, "
        "which rules matched and the decision, without file paths, conditions, header values, other tenants' "
        "names or rule descriptions; admin keys still get the full trace.",
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
        description="The output cap (`max_tokens`) sent upstream for a request that sets none, unless its "
        "cluster sets its own `default_max_tokens`; budgets reserve exactly the cap that is sent (and settle "
        "to the real usage afterwards), so no request can cost more than was reserved.",
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
