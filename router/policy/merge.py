"""Merging the files of one policy: every file's clusters, aliases, routes and settings gathered in one
place (duplicates are issues), then compiled into a :class:`~router.policy.compiled.Policy`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

from router.errors import PolicyIssue
from router.policy.compiled import CompiledRoute, Policy
from router.policy.merge_classifier import ClassifierParts
from router.policy.schema import (
    Auth,
    Budget,
    ClassifierSettings,
    Cluster,
    Costs,
    Match,
    ModelAlias,
    PolicyFile,
    RequestLimits,
    ResponseCache,
    Route,
    VllmCluster,
)
from router.policy.schema import LatencyBudget as LatencySpec
from router.policy.yamlsrc import KeyPath, SourceDoc, dotted
from router.types import Decision, LatencyTargets, Target

_T = TypeVar("_T")


@dataclass
class Where:
    doc: SourceDoc
    path: KeyPath

    @property
    def at(self) -> str:
        """``file:line`` of this place, for messages that point back at it."""
        line = self.doc.line_of(self.path)
        return f"{self.doc.file}:{line}" if line else self.doc.file

    def issue(self, sub: KeyPath, message: str) -> PolicyIssue:
        full = (*self.path, *sub)
        return PolicyIssue(self.doc.file, self.doc.line_of(full), dotted(full), self.doc.redact(message))


class Merged:
    """Every file's clusters, aliases, routes and settings, gathered with where each was written."""

    def __init__(self) -> None:
        self.issues: list[PolicyIssue] = []
        self.clusters: dict[str, tuple[Cluster, Where]] = {}
        self.models: dict[str, tuple[ModelAlias, Where]] = {}
        self.routes: list[tuple[Route, Where]] = []
        self.route_names: dict[str, Where] = {}
        self.classifier_parts = ClassifierParts()
        self.classifier: ClassifierSettings | None = None  # merged from every file's block (Merged.of)
        self.singletons: dict[str, tuple[Any, Where]] = {}  # auth, costs, cache, limits: one file each
        self.budgets: list[tuple[Budget, Where]] = []

    @classmethod
    def of(cls, docs: list[tuple[SourceDoc, PolicyFile]]) -> Merged:
        merged = cls()
        for doc, pf in docs:
            merged.add_file(doc, pf)
        if merged.classifier_parts.present:
            merged.classifier = merged.classifier_parts.build(merged.issues)
        return merged

    @property
    def route_by_name(self) -> dict[str, Route]:
        return {r.name: r for r, _ in self.routes}

    def add_file(self, doc: SourceDoc, pf: PolicyFile) -> None:
        """Gather one file (in file-name order); a name defined twice, or a singleton set twice, is an issue."""
        if pf.classifier is not None:
            self.classifier_parts.add(Where(doc, ("classifier",)), pf.classifier, self.issues)
        for key in ("auth", "costs", "cache", "limits"):
            value = getattr(pf, key)
            if value is None:
                continue
            at = Where(doc, (key,))
            if key in self.singletons:
                first = self.singletons[key][1].doc.file
                self.issues.append(at.issue((), f"`{key}` is set in more than one file (also in {first})"))
            else:
                self.singletons[key] = (value, at)
        self.budgets += [(b, Where(doc, ("budgets", i))) for i, b in enumerate(pf.budgets)]
        for name, cluster in pf.clusters.items():
            self._add(self.clusters, "cluster", name, cluster, Where(doc, ("clusters", name)))
        for name, alias in pf.models.items():
            self._add(self.models, "model alias", name, alias, Where(doc, ("models", name)))
        for i, route in enumerate(pf.routes):
            where = Where(doc, ("routes", i))
            if route.name in self.route_names:
                prev = self.route_names[route.name]
                self.issues.append(where.issue(("name",), f"duplicate route name {route.name!r} (first at {prev.at})"))
            self.route_names[route.name] = where
            self.routes.append((route, where))

    def _add(self, table: dict[str, tuple[_T, Where]], what: str, name: str, item: _T, where: Where) -> None:
        if name in table:
            self.issues.append(where.issue((), f"duplicate {what} {name!r} (first at {table[name][1].at})"))
        else:
            table[name] = (item, where)

    # -- compile ------------------------------------------------------------------------------
    def _chain(self, cluster: str, adapter: str | None, explicit: list[str] | None) -> tuple[Target, ...]:
        out = [Target(cluster, adapter)]
        seen = {cluster}

        def add(names: list[str]) -> None:
            for n in names:
                if n in seen:
                    continue
                seen.add(n)
                c = self.clusters[n][0]
                out.append(Target(n, c.serves_adapter(adapter)))
                add(c.fallbacks)

        add(explicit if explicit is not None else self.clusters[cluster][0].fallbacks)
        return tuple(out)

    def _routes(self) -> list[CompiledRoute]:
        routes = []
        for route, where in self.routes:
            reason = route.description or f"rule {route.name!r} matched ({describe_match(route.match)})"
            decision = Decision(
                route.name,
                self._chain(route.cluster, route.adapter, route.fallbacks),
                reason,
                latency=_latency(route.latency),
            )
            routes.append(CompiledRoute(route, decision, where.doc.file, where.doc.line_of(where.path)))
        # Stable sort: equal priorities keep file order.
        routes.sort(key=lambda r: -r.route.priority)
        return routes

    def _aliases(self, routes: list[CompiledRoute]) -> tuple[dict[str, Decision], dict[str, Decision]]:
        """Each alias's decision when it is pinned to a cluster, or its default route's when no rule matches."""
        pinned: dict[str, Decision] = {}
        defaults: dict[str, Decision] = {}
        for name, (alias, _) in self.models.items():
            if alias.cluster is not None:
                chain = self._chain(alias.cluster, alias.adapter, alias.fallbacks)
                pinned[name] = Decision(
                    f"model:{name}",
                    chain,
                    f"alias {name!r} is pinned to {alias.cluster!r}",
                    True,
                    latency=_latency(alias.latency),
                )
            else:
                assert alias.default_route is not None  # the schema guarantees one of the two
                d = next(r.decision for r in routes if r.route.name == alias.default_route)
                defaults[name] = replace(d, reason=f"no rule matched; default route of alias {name!r}")
        return pinned, defaults

    def build(self, files: tuple[str, ...]) -> Policy:
        """The compiled policy: rules sorted by priority, aliases pinned or defaulted, singletons filled in."""
        routes = self._routes()
        rules = tuple(r for r in routes if not r.route.target_only)
        pinned, defaults = self._aliases(routes)
        classifier = self.classifier or ClassifierSettings()
        low_confidence = None
        if classifier.low_confidence_route is not None:
            d = next(r.decision for r in routes if r.route.name == classifier.low_confidence_route)
            low_confidence = replace(d, reason="low-confidence route")
        warnings = tuple(
            f"cluster {n!r}: endpoint `emulated` is served only with --emulate-missing"
            for n, (c, _) in self.clusters.items()
            if isinstance(c, VllmCluster) and any(e.url == "emulated" for e in c.endpoint_specs())
        )
        auth = self.singletons.get("auth", (Auth(), None))[0]
        costs = self.singletons.get("costs", (Costs(), None))[0]
        cache = self.singletons.get("cache", (ResponseCache(), None))[0]
        limits = self.singletons.get("limits", (RequestLimits(), None))[0]
        if not auth.anonymous:
            warnings += ("auth: anonymous use is off: every request needs a key (ROUTER_KEYS_FILE, ROUTER_API_KEYS)",)
        return Policy(
            files=files,
            auth=auth,
            costs=costs,
            cache=cache,
            limits=limits,
            budgets=tuple(b for b, _ in self.budgets),
            locations={
                **{f"clusters.{n}": (w.doc.file, w.doc.line_of(w.path)) for n, (_, w) in self.clusters.items()},
                **{k: (w.doc.file, w.doc.line_of(w.path)) for k, (_, w) in self.singletons.items()},
                **{f"routes.{r.name}": (w.doc.file, w.doc.line_of(w.path)) for r, w in self.routes if r.target_only},
            },
            clusters={n: c for n, (c, _) in self.clusters.items()},
            models={n: a for n, (a, _) in self.models.items()},
            routes=rules,
            pinned=pinned,
            defaults=defaults,
            classifier=classifier,
            low_confidence=low_confidence,
            warnings=warnings,
        )


def _latency(spec: LatencySpec | None) -> LatencyTargets | None:
    if spec is None or (spec.max_ttft_ms is None and spec.max_latency_ms is None and spec.hedge_after_ms is None):
        return None
    return LatencyTargets(
        spec.max_ttft_ms / 1000 if spec.max_ttft_ms is not None else None,
        spec.max_latency_ms / 1000 if spec.max_latency_ms is not None else None,
        spec.hedge_after_ms / 1000 if spec.hedge_after_ms is not None else None,
    )


def describe_match(match: Match) -> str:
    parts = []
    for key, value in match.model_dump(exclude_none=True, by_alias=True).items():
        parts.append(f"{key}={value}")
    return ", ".join(parts) or "matches everything"
