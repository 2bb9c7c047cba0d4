"""Policy format, version 1: the pydantic schema of one policy file.

Every field has a description and either a default or is marked required; every number has bounds.
``policies/REFERENCE.md`` is generated from this module (``router policy reference``).
Cross-references between files (routes naming clusters, fallback cycles, ...) are checked in
:mod:`router.policy.compile`, after all files are read.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from router.policy.schema_accounting import Auth, Budget, Costs, ResponseCache
from router.policy.schema_backoff import Cooldown
from router.policy.schema_base import EMULATED, NAME, _Strict
from router.policy.schema_clusters import Cluster, FrontierCluster, VllmCluster, requires_output_cap
from router.policy.schema_limits import RequestLimits
from router.policy.schema_match import Match
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
        min_length=1,
        description="Required. Example user messages, at least three in all: another file of the policy may "
        "add examples to a task by naming it with only `examples`. Their embeddings are averaged into a "
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
        None,
        description="Classification settings. Each setting may be set in one file only; custom tasks may take "
        "examples from several files.",
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
