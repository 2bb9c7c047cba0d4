"""Policy schema: conversations that keep their route (a routed alias's ``stickiness``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from router.policy.schema_base import _Strict

Escalation = Literal["tools", "long_prompt", "header"]


def _every_escalation() -> list[Escalation]:
    return ["tools", "long_prompt", "header"]


class Stickiness(_Strict):
    """A conversation keeps its first route (kept in the state store, shared by every replica).

    The later turns of a conversation reuse its first decision without classification or rules, so that an
    agent's tool loop or a long chat does not bounce between a pool and a frontier model (losing the prefix
    cache and changing the answer's voice). It may move up, never silently down: when one of `escalate_on`
    holds, the turn is decided afresh and the conversation moves to the new route if that one answers from
    a frontier cluster where the kept one did not; otherwise the kept route stays."""

    by: Literal["none", "session", "conversation"] = Field(
        "none",
        description="What a conversation is: `session`, requests with the same `x-session-id`; "
        "`conversation`, the same `x-session-id` or, without one, the same system prompt and first user "
        "turn; `none`: every request decided alone.",
    )
    ttl_s: float = Field(3600.0, gt=0, le=7 * 86_400, description="How long a kept decision lives after its last use.")
    escalate_on: list[Escalation] = Field(
        default_factory=_every_escalation,
        description="What makes a kept conversation look again: `tools` (the request carries tools), "
        "`long_prompt` (its prompt is longer than `long_prompt_tokens`), `header` (the client sends "
        "`quality_header: high`).",
    )
    long_prompt_tokens: int = Field(
        6000, ge=1, le=10_000_000, description="With `long_prompt`: estimated prompt tokens past which to look again."
    )
    quality_header: str = Field(
        "x-router-quality",
        min_length=1,
        description="With `header`: the request header whose value `high` asks for quality.",
    )
