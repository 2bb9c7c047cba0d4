"""Conversations that keep their route (a routed alias's ``stickiness``, issue #16): the first decision of a
conversation is kept in the state store (shared by every replica, with a TTL) and reused for its later
turns without classification or rules. A turn that carries one of the alias's escalation signals is
decided afresh and may move the conversation up (to a route answered by a frontier cluster), never
silently down."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from router.api.chat import ChatRequest, features
from router.policy.compiled import Policy
from router.policy.schema import Stickiness
from router.state.base import StateStore
from router.types import Decision, RequestFeatures
from router.upstream.request import affinity_key


@dataclass(frozen=True)
class Conversation:
    """A request's conversation under its alias's stickiness: where its decision is kept."""

    cfg: Stickiness
    key: str


def conversation(
    policy: Policy, chat: ChatRequest, headers: Mapping[str, str], tenant: str | None, prefix: str
) -> Conversation | None:
    """The request's conversation, or None (its alias does not stick, or nothing identifies one)."""
    alias = policy.models.get(chat.alias)
    cfg = alias.stickiness if alias is not None else None
    if cfg is None or cfg.by == "none":
        return None
    raw = affinity_key("prefix" if cfg.by == "conversation" else "session", chat, headers)
    if raw is None:
        return None
    digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
    return Conversation(cfg, f"{prefix}k:{tenant or '-'}:{chat.alias}:{digest}")


def escalation(cfg: Stickiness, f: RequestFeatures, headers: Mapping[str, str]) -> str | None:
    """The first of the alias's escalation signals this turn carries, or None."""
    for signal in cfg.escalate_on:
        if signal == "tools" and f.has_tools:
            return "tools"
        if signal == "long_prompt" and f.prompt_tokens > cfg.long_prompt_tokens:
            return f"prompt of {f.prompt_tokens} tokens > {cfg.long_prompt_tokens}"
        if signal == "header" and headers.get(cfg.quality_header, "").strip().lower() == "high":
            return f"{cfg.quality_header}: high"
    return None


def rank(policy: Policy, decision: Decision) -> int:
    """Up is toward the frontier: 1 when the route's first target is a frontier cluster, else 0."""
    cfg = policy.clusters.get(decision.primary.cluster)
    return 1 if cfg is not None and cfg.kind == "frontier" else 0


def settle(policy: Policy, kept: Decision, fresh: Decision, why: str) -> tuple[Decision, bool]:
    """A kept conversation's turn decided afresh because of ``why``: the fresh decision if it is higher
    (and the conversation moves there), else the kept one. Returns the decision and whether it moved."""
    if rank(policy, fresh) > rank(policy, kept):
        return replace(fresh, reason=f"{fresh.reason}; conversation moved up from {kept.route!r} ({why})"), True
    return replace(kept, reason=f"conversation kept on {kept.route!r} ({why}; {fresh.route!r} is not higher)"), False


class Keeper:
    """Reads and writes kept decisions (route names) in the state store, read at each use."""

    def __init__(self, store: Callable[[], StateStore]) -> None:
        self.store = store

    async def recall(self, policy: Policy, c: Conversation) -> Decision | None:
        raw = await self.store().cache_get(c.key, c.cfg.ttl_s)  # its time to live runs from the last turn
        if raw is None:
            return None
        kept = policy.route_decision(raw.decode())  # a route a reload removed: decided afresh
        if kept is None:
            return None
        return replace(kept, reason=f"conversation kept on route {kept.route!r} ({c.cfg.by})")

    async def keep(self, c: Conversation, decision: Decision) -> None:
        await self.store().cache_set(c.key, decision.route.encode(), c.cfg.ttl_s)


async def explain_kept(
    keeper: Keeper,
    policy: Policy,
    chat: ChatRequest,
    headers: Mapping[str, str],
    tenant: str | None,
    prefix: str,
    fresh: Decision,
) -> dict[str, object] | None:
    """For ``POST /v1/route/explain``: whether this request belongs to a conversation with a kept decision,
    and the route it would really take (``fresh``: what the rules alone decide); None: its alias does not
    stick."""
    conv = conversation(policy, chat, headers, tenant, prefix)
    if conv is None:
        return None
    kept = await keeper.recall(policy, conv)
    if kept is None:
        return {"by": conv.cfg.by, "kept_route": None, "route": fresh.route, "reason": "first turn: kept from here"}
    why = escalation(conv.cfg, features(chat, headers, tenant), headers)
    final = kept if why is None else settle(policy, kept, fresh, why)[0]
    return {
        "by": conv.cfg.by,
        "kept_route": kept.route,
        "escalation": why,
        "route": final.route,
        "reason": final.reason,
    }
