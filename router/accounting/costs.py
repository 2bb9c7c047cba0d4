"""Prices and costs (pure): dollars per token for frontier models and self-hosted pools, and what a
request's usage cost there and on the baseline model.

Self-hosted pools are costed from GPU time: ``usd_per_gpu_hour × gpus_per_replica`` divided by the tokens
a replica processes per second at good utilisation (prefill and decode separately), so a pool's price
per million tokens is ``usd_per_gpu_hour × gpus / 3600 / tokens_per_second × 1e6``. Money is counted in
integer nano-dollars in the state store (no float drift across millions of increments).
"""

from __future__ import annotations

from dataclasses import dataclass

from router.policy.schema import Price, SelfHostedCost
from router.types import Usage

NANO = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Prices:
    """US dollars per token."""

    input: float
    output: float

    @classmethod
    def per_million(cls, p: Price) -> Prices:
        return cls(p.input_usd_per_mtok / 1e6, p.output_usd_per_mtok / 1e6)

    @classmethod
    def self_hosted(cls, c: SelfHostedCost) -> Prices:
        usd_per_second = c.usd_per_gpu_hour * c.gpus_per_replica / 3600
        return cls(usd_per_second / c.input_tokens_per_second, usd_per_second / c.output_tokens_per_second)

    def cost(self, usage: Usage) -> float:
        return usage.input_tokens * self.input + usage.output_tokens * self.output

    def worst(self, other: Prices) -> Prices:
        return Prices(max(self.input, other.input), max(self.output, other.output))

    def per_mtok(self) -> tuple[float, float]:
        return self.input * 1e6, self.output * 1e6


def nano(usd: float) -> int:
    """Dollars to integer nano-dollars, rounded up (a reservation must never be short)."""
    n = usd * NANO
    i = int(n)
    return i + (n > i)


def usd(nanos: int) -> float:
    return nanos / NANO


def header(usd_value: float) -> str:
    """A cost header value: dollars with ten decimals, no exponent (1e-7 would read badly)."""
    return f"{usd_value:.10f}"
