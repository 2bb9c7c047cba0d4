"""Policy schema: what tokens cost (frontier prices per million tokens, and a self-hosted pool's GPU time)."""

from __future__ import annotations

from pydantic import Field

from router.policy.schema_base import _Strict


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
