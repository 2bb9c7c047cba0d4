"""Policy schema, part 1b: backing off after failures: retrying the endpoint that just failed, and a
frontier provider's cooldown."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from router.policy.schema_base import _Strict


class Retry(_Strict):
    """Retrying the endpoint that just failed, when no other untried endpoint of the cluster can take the
    request (a one-endpoint cluster, a provider): after the upstream's `Retry-After` when it fits, else after a
    jittered backoff, never at once. Timeouts are not retried on the same endpoint."""

    same_endpoint: int = Field(
        1, ge=0, le=5, description="Retries of the endpoint that just failed, per request (0: never)."
    )
    backoff_base_ms: float = Field(
        100.0,
        gt=0,
        le=60_000,
        description="The n-th retry waits a random time between 0 and `backoff_base_ms` × 2^(n-1) (full "
        "jitter), at most `backoff_max_ms`.",
    )
    backoff_max_ms: float = Field(2000.0, gt=0, le=600_000, description="Cap on one backoff.")
    max_retry_after_s: float = Field(
        5.0,
        ge=0,
        le=600,
        description="The longest `Retry-After` a request waits out on the same endpoint (and only within its "
        "deadline); longer, it goes to the next target at once.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.backoff_base_ms > self.backoff_max_ms:
            raise ValueError("backoff_base_ms must not exceed backoff_max_ms")
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
