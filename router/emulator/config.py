"""Emulator settings; all may be changed live through ``POST /emulator/config`` (chaos tests)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EmulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = Field("emulated-8b", min_length=1, description="The base model name served.")
    lora: list[str] = Field(default_factory=list, description="LoRA adapter names also served.")
    latency_ms: float = Field(0.0, ge=0, le=600_000, description="Extra delay before a non-streamed answer.")
    ttft_ms: float = Field(0.0, ge=0, le=600_000, description="Delay before the first streamed token.")
    tokens_per_second: float = Field(0.0, ge=0, le=1_000_000, description="Generation speed; 0 means instantaneous.")
    completion_tokens: int = Field(16, ge=1, le=100_000, description="Tokens generated when max_tokens is unset.")
    failure_rate: float = Field(0.0, ge=0, le=1, description="Share of requests answered with `failure_status`.")
    failure_status: int = Field(500, ge=400, le=599, description="Status of injected failures.")
    retry_after_s: float | None = Field(None, ge=0, le=86_400, description="`Retry-After` sent with injected failures.")
    send_usage: bool = Field(True, description="Send the usage chunk a stream asks for (llama.cpp's server does not).")
    break_stream_rate: float = Field(0.0, ge=0, le=1, description="Share of streams cut off half way.")
    max_num_seqs: int = Field(256, ge=1, le=100_000, description="Running slots; more requests wait (vLLM).")
    kv_cache_tokens: int = Field(100_000, ge=1, description="KV cache capacity for the usage gauge.")
    seed: int | None = Field(None, description="Seed of the failure draws (reproducible chaos).")
