"""A compiled policy: what :func:`router.policy.engine.decide` reads (built by :mod:`router.policy.merge`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from router.policy.schema import (
    Auth,
    Budget,
    ClassifierSettings,
    Costs,
    FrontierCluster,
    ModelAlias,
    RequestLimits,
    ResponseCache,
    Route,
    VllmCluster,
)
from router.types import Decision


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    decision: Decision
    file: str
    line: int | None


@dataclass(frozen=True)
class Policy:
    """A validated, merged policy, ready for :func:`router.policy.engine.decide`."""

    files: tuple[str, ...]
    clusters: Mapping[str, VllmCluster | FrontierCluster]
    models: Mapping[str, ModelAlias]
    routes: tuple[CompiledRoute, ...]  # in evaluation order: priority (highest first), then file order
    pinned: Mapping[str, Decision]
    defaults: Mapping[str, Decision]
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    low_confidence: Decision | None = None
    auth: Auth = field(default_factory=Auth)
    costs: Costs = field(default_factory=Costs)
    cache: ResponseCache = field(default_factory=ResponseCache)
    limits: RequestLimits = field(default_factory=RequestLimits)
    budgets: tuple[Budget, ...] = ()

    @property
    def needs_classifier(self) -> bool:
        """Classifying a request can change its route (otherwise the pipeline skips it)."""
        if not self.classifier.enabled:
            return False
        return self.low_confidence is not None or any(r.route.match.uses_classifier for r in self.routes)

    @cached_property
    def rule_headers(self) -> frozenset[str]:
        """The request headers some rule looks at (what a decision record keeps for a replay); read per
        request with the decision log on, so walked once per policy."""
        return frozenset(name for r in self.routes for name in r.route.match.header_names())

    def output_cap(self, cluster: str) -> int:
        """The output cap sent to ``cluster`` for a request that sets none (and reserved against budgets)."""
        cfg = self.clusters.get(cluster)
        own = cfg.default_max_tokens if cfg is not None else None
        return own if own is not None else self.costs.default_max_tokens

    def route_decision(self, name: str) -> Decision | None:
        """The decision a route named ``name`` gives (a rule's, an alias default's, the low-confidence one,
        a pinned alias's ``model:<alias>``)."""
        for rule in self.routes:
            if rule.route.name == name:
                return rule.decision
        for d in (*self.defaults.values(), self.low_confidence, *self.pinned.values()):
            if d is not None and d.route == name:
                return d
        return None

    warnings: tuple[str, ...] = field(default=())
    digest: str = ""  # a hash of the files' names and contents (router.policy.compile.digest)
    # Where things were written, by dotted path ("clusters.api", "costs"): (file, line).
    locations: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
