"""Shared value types: frozen dataclasses and enums used across layers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    """What the policy engine may look at. Built once per request by :func:`router.api.chat.features`."""

    alias: str
    tenant: str | None
    headers: Mapping[str, str]
    prompt_tokens: int
    has_tools: bool
    has_images: bool
    stream: bool
    last_user_message: str = ""
    # The classifier's answers; None when the request was not classified (pinned alias, classifier off
    # or failed), and then no task or complexity condition holds.
    task: str | None = None
    task_confidence: float | None = None
    complexity: float | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """One place a request may go: a cluster, optionally with a LoRA adapter (vLLM) to name as ``model``."""

    cluster: str
    adapter: str | None = None


@dataclass(frozen=True, slots=True)
class LatencyTargets:
    """A route's soft latency targets, in seconds (None: no target)."""

    ttft_s: float | None = None
    latency_s: float | None = None
    hedge_s: float | None = None  # try the rest of the chain too when the first target is this slow


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer for one request: an ordered chain of targets and why."""

    route: str
    targets: tuple[Target, ...]
    reason: str
    pinned: bool = False
    rule: str | None = None  # the rule that matched; None for pinned aliases and default routes
    latency: LatencyTargets | None = None  # the route's latency targets (not a spend budget)

    @property
    def primary(self) -> Target:
        return self.targets[0]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class AttemptRecord:
    """What one upstream attempt did (for spans, logs and the response headers)."""

    cluster: str
    endpoint: str
    upstream_model: str
    outcome: str = "pending"
    error_type: str | None = None
    next_reason: str | None = None
    retry: bool = False
    hedge: bool = False  # made by a hedge: the rest of the chain, tried while the first target was slow
    seconds: float | None = None  # how long it took, once it ended

    def as_json(self) -> dict[str, object]:
        """For the access log and the decision log: where it went, how it ended, why, how long."""
        return {
            "cluster": self.cluster,
            "endpoint": self.endpoint,
            "outcome": self.outcome,
            "error_type": self.error_type,
            "ms": None if self.seconds is None else round(self.seconds * 1000, 3),
            **({"retry": True} if self.retry else {}),
            **({"hedge": True} if self.hedge else {}),
        }


@dataclass(slots=True)
class RequestOutcome:
    """Mutable per-request record, filled in as the request moves through the pipeline."""

    request_id: str
    started: float = 0.0
    alias: str = ""
    route: str = ""
    cluster: str = ""
    endpoint: str = ""  # of the attempt that answered
    tier: str | None = None  # that endpoint's capacity tier (self-hosted pools): it prices the answer
    policy: str = ""  # the digest of the policy the request was routed by
    confidence: float | None = None  # the classifier's, for its task
    rule: str | None = None  # the rule that matched (None: a pinned alias or a default route)
    targets: list[str] = field(default_factory=list)  # the decision's chain: cluster[:adapter], in order
    upstream_model: str = ""
    reason: str = ""
    status: int = 0
    stream: bool = False
    usage: Usage = field(default_factory=Usage)
    ttft_s: float | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    error_type: str | None = None
    task: str | None = None
    complexity: float | None = None
    skipped: list[str] = field(default_factory=list)  # "cluster: why" for each target passed over
    tenant: str = ""
    key_name: str | None = None  # the API key's name (never the key); None: anonymous
    cost_usd: float | None = None
    baseline_cost_usd: float | None = None
    cache: str | None = None  # hit | miss, when the response cache was consulted
    hedge: str | None = None  # when a hedge was sent (or not, for want of budget): primary | hedge | none | budget
    # The error the caller was answered with (also in the response body): its text, cut to 300 characters,
    # and the field it names, so the access log says which field a 400 rejected and why a 502/504 failed.
    error_message: str | None = None
    error_param: str | None = None
    # With the decision log on: what a replay needs (router.admin.decisions.replay_fields), else None.
    replay: dict[str, Any] | None = None

    def decided(self) -> dict[str, object]:
        """What the access log and the decision log both say of a request: how it was classified and
        routed, every attempt (the failed ones too), how it ended and what it cost."""
        return {
            "request_id": self.request_id,
            "status": self.status,
            "alias": self.alias or None,
            "route": self.route or None,
            "cluster": self.cluster or None,
            "policy": self.policy or None,
            "tenant": self.tenant or None,
            "task": self.task,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "complexity": None if self.complexity is None else round(self.complexity, 4),
            "rule": self.rule,
            "tried": [a.as_json() for a in self.attempts] or None,
            "skipped": self.skipped or None,
            "error_type": self.error_type,
            "error": self.error_message,
            "error_param": self.error_param,
            "cost_usd": self.cost_usd,
            "baseline_cost_usd": self.baseline_cost_usd,
        }
