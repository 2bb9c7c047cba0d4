"""Policy format, version 1: the pydantic schema of one policy file.

Every field has a description and either a default or is marked required; every number has bounds.
``policies/REFERENCE.md`` is generated from this module (``router policy reference``).
Cross-references between files (routes naming clusters, fallback cycles, ...) are checked in
:mod:`router.policy.compile`, after all files are read.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from router.policy.schema_accounting import Auth, Budget, Costs, ResponseCache
from router.policy.schema_backoff import Cooldown
from router.policy.schema_base import EMULATED, NAME, _Strict
from router.policy.schema_clusters import Cluster, FrontierCluster, VllmCluster, requires_output_cap
from router.policy.schema_limits import RequestLimits
from router.policy.schema_prices import Price, SelfHostedCost
from router.policy.schema_sticky import Stickiness
from router.policy.schema_upstream import (
    CircuitBreaker,
    EndpointSpec,
    HealthCheck,
    LatencyBudget,
    LoadBalancing,
    OutlierDetection,
    Timeouts,
)

__all__ = [
    "EMULATED",
    "NAME",
    "Auth",
    "Budget",
    "CircuitBreaker",
    "ClassifierSettings",
    "Cluster",
    "Cooldown",
    "Costs",
    "CustomTask",
    "EndpointSpec",
    "FrontierCluster",
    "HealthCheck",
    "LatencyBudget",
    "LoadBalancing",
    "Match",
    "ModelAlias",
    "OutlierDetection",
    "PolicyFile",
    "Price",
    "RequestLimits",
    "ResponseCache",
    "Route",
    "SelfHostedCost",
    "Stickiness",
    "Timeouts",
    "VllmCluster",
    "requires_output_cap",
]


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
    stickiness: Stickiness | None = Field(None, description="Routed aliases: conversations keep their route.")

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.cluster is None) == (self.default_route is None):
            raise ValueError("set exactly one of `cluster` (pinned) or `default_route` (routed by rules)")
        if self.cluster is not None and self.stickiness is not None:
            raise ValueError("`stickiness` is for rule-routed aliases: a pinned alias always goes to its cluster")
        if self.cluster is None and (
            self.adapter is not None or self.fallbacks is not None or self.latency is not None
        ):
            raise ValueError(
                "`adapter`, `fallbacks` and `latency` go with `cluster`; on routed aliases, set them on routes"
            )
        return self


class Match(_Strict):
    """Conditions of a rule. All set conditions must hold; unset ones match anything."""

    models: list[str] | None = Field(None, min_length=1, description="Requested aliases this rule applies to.")
    tenants: list[str] | None = Field(None, min_length=1, description="Tenants this rule applies to.")
    headers: dict[str, str] | None = Field(
        None,
        min_length=1,
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
        "See docs/classification.md for how to pick it from a target share of frontier calls.",
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

    def header_names(self) -> set[str]:
        return set(self.headers or ())

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
    limits: RequestLimits | None = Field(
        None, description="Bounds on what one request may carry; at most one file may set them."
    )
