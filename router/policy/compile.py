"""Load policy files, validate them against the schema, check cross-references, compile for the engine.

All or nothing: :func:`load_policy` returns a :class:`Policy` only if every file is valid, otherwise it
raises :class:`~router.errors.PolicyError` carrying every issue with file, line and key path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from router.classifier.labels import TASKS
from router.errors import PolicyError, PolicyIssue
from router.policy.schema import (
    Auth,
    Budget,
    ClassifierSettings,
    Cluster,
    Costs,
    FrontierCluster,
    Match,
    ModelAlias,
    PolicyFile,
    RequestLimits,
    ResponseCache,
    Route,
    VllmCluster,
    requires_output_cap,
)
from router.policy.schema import LatencyBudget as LatencySpec
from router.policy.yamlsrc import KeyPath, SourceDoc, dotted, parse_yaml
from router.types import Decision, LatencyBudget, Target

_T = TypeVar("_T")

POLICY_SUFFIXES = (".yaml", ".yml")
# A policy file larger than this is refused unread (real ones are tens of kilobytes; a multi-megabyte one
# is a mistake or an attack, and would cost seconds of CPU to parse).
MAX_FILE_BYTES = 2 * 1024 * 1024
# Keys an earlier version of the format had, with where they went.
RENAMED = {"max_concurrency": "`max_concurrency` is now `circuit_breaker.max_in_flight`"}


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    decision: Decision
    file: str
    line: int | None
    regex: re.Pattern[str] | None = None
    keywords: re.Pattern[str] | None = None


def keyword_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """Whole words or phrases, case-insensitive; inner whitespace matches any run of whitespace."""
    parts = sorted((r"\s+".join(map(re.escape, w.split())) for w in words), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


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

    def output_cap(self, cluster: str) -> int:
        """The output cap sent to ``cluster`` for a request that sets none (and reserved against budgets)."""
        cfg = self.clusters.get(cluster)
        own = cfg.default_max_tokens if cfg is not None else None
        return own if own is not None else self.costs.default_max_tokens

    warnings: tuple[str, ...] = field(default=())
    # Where things were written, by dotted path ("clusters.api", "costs"): (file, line).
    locations: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)


def policy_files(path: str | Path) -> list[Path]:
    """The policy files at ``path``: the file itself, or the YAML files of a directory (not recursive).

    Files ending in ``.test.yaml`` are golden tests, not policy.
    """
    p = Path(path)
    if p.is_dir():
        return sorted(
            f for f in p.iterdir() if f.suffix in POLICY_SUFFIXES and not f.name.endswith((".test.yaml", ".test.yml"))
        )
    return [p]


def load_policy(path: str | Path, env: Mapping[str, str] | None = None) -> Policy:
    files = policy_files(path)
    if not files:
        raise PolicyError([PolicyIssue(str(path), None, "", "no policy files (*.yaml) found")])
    texts: list[tuple[str, str]] = []
    issues: list[PolicyIssue] = []
    for f in files:
        try:
            size = f.stat().st_size
            if size > MAX_FILE_BYTES:
                issues.append(PolicyIssue(str(f), None, "", f"the file is {size} bytes; the limit is {MAX_FILE_BYTES}"))
                continue
            texts.append((str(f), f.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            issues.append(PolicyIssue(str(f), None, "", f"cannot read: {exc}"))
    if issues:
        raise PolicyError(issues)
    return compile_texts(texts, env)


def compile_texts(texts: Sequence[tuple[str, str]], env: Mapping[str, str] | None = None) -> Policy:
    """Validate and merge ``(file name, YAML text)`` pairs."""
    env = os.environ if env is None else env
    docs: list[tuple[SourceDoc, PolicyFile]] = []
    issues: list[PolicyIssue] = []
    for name, text in texts:
        doc = parse_yaml(text, name, env)
        issues.extend(doc.issues)
        if doc.data is None:
            continue
        try:
            docs.append((doc, PolicyFile.model_validate(doc.data)))
        except ValidationError as exc:
            # An unset ${VAR} is reported once, not again as the empty value it left behind.
            env_paths = [i.path for i in doc.issues]
            issues.extend(i for i in _validation_issues(doc, exc) if not any(p.startswith(i.path) for p in env_paths))
    if issues:
        raise PolicyError(issues)
    merged = _Merger(docs)
    merged.check()
    if merged.issues:
        raise PolicyError(merged.issues)
    return merged.build(tuple(n for n, _ in texts))


def _validation_issues(doc: SourceDoc, exc: ValidationError) -> list[PolicyIssue]:
    out = []
    for err in exc.errors():
        loc: KeyPath = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in ("vllm", "frontier")))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = RENAMED.get(str(loc[-1]) if loc else "", "unknown key (not in the policy schema; check the spelling)")
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            msg = "`kind` must be `vllm` or `frontier`"
            loc = (*loc, "kind")
        out.append(PolicyIssue(doc.file, doc.line_of(loc), dotted(loc), doc.redact(msg)))
    return out


@dataclass
class _Where:
    doc: SourceDoc
    path: KeyPath

    def issue(self, sub: KeyPath, message: str) -> PolicyIssue:
        full = (*self.path, *sub)
        return PolicyIssue(self.doc.file, self.doc.line_of(full), dotted(full), self.doc.redact(message))


class _Merger:
    def __init__(self, docs: list[tuple[SourceDoc, PolicyFile]]) -> None:
        self.issues: list[PolicyIssue] = []
        self.clusters: dict[str, tuple[Cluster, _Where]] = {}
        self.models: dict[str, tuple[ModelAlias, _Where]] = {}
        self.routes: list[tuple[Route, _Where]] = []
        route_names: dict[str, _Where] = {}
        self.classifier: tuple[ClassifierSettings, _Where] | None = None
        self.singletons: dict[str, tuple[Any, _Where]] = {}  # auth, costs, cache, limits: one file each
        self.budgets: list[tuple[Budget, _Where]] = []
        for doc, pf in docs:
            if pf.classifier is not None:
                at = _Where(doc, ("classifier",))
                if self.classifier is not None:
                    first = self.classifier[1].doc.file
                    self.issues.append(at.issue((), f"`classifier` is set in more than one file (also in {first})"))
                else:
                    self.classifier = (pf.classifier, at)
            for key in ("auth", "costs", "cache", "limits"):
                value = getattr(pf, key)
                if value is None:
                    continue
                at = _Where(doc, (key,))
                if key in self.singletons:
                    first = self.singletons[key][1].doc.file
                    self.issues.append(at.issue((), f"`{key}` is set in more than one file (also in {first})"))
                else:
                    self.singletons[key] = (value, at)
            self.budgets += [(b, _Where(doc, ("budgets", i))) for i, b in enumerate(pf.budgets)]
            for name, cluster in pf.clusters.items():
                self._add(self.clusters, "cluster", name, cluster, _Where(doc, ("clusters", name)))
            for name, alias in pf.models.items():
                self._add(self.models, "model alias", name, alias, _Where(doc, ("models", name)))
            for i, route in enumerate(pf.routes):
                where = _Where(doc, ("routes", i))
                if route.name in route_names:
                    prev = route_names[route.name]
                    self.issues.append(
                        where.issue(("name",), f"duplicate route name {route.name!r} (also in {prev.doc.file})")
                    )
                route_names[route.name] = where
                self.routes.append((route, where))
        self.route_by_name = {r.name: r for r, _ in self.routes}

    def _add(self, table: dict[str, tuple[_T, _Where]], what: str, name: str, item: _T, where: _Where) -> None:
        if name in table:
            self.issues.append(where.issue((), f"duplicate {what} {name!r} (also in {table[name][1].doc.file})"))
        else:
            table[name] = (item, where)

    # -- cross-reference checks -------------------------------------------------------------
    def check(self) -> None:
        if not self.models:
            self.issues.append(PolicyIssue("(policy)", None, "models", "no model aliases: clients could call nothing"))
        for name, (cluster, where) in self.clusters.items():
            self._check_refs(where, ("fallbacks",), cluster.fallbacks, own=name)
            if (
                isinstance(cluster, FrontierCluster)
                and cluster.default_max_tokens is None
                and requires_output_cap(cluster.model)
            ):
                self.issues.append(
                    where.issue(
                        ("default_max_tokens",),
                        f"{cluster.model!r} needs an output cap on every request: set `default_max_tokens` "
                        "(sent when a request sets no max_tokens, and reserved against budgets)",
                    )
                )
        self._check_cycles()
        for name, (alias, where) in self.models.items():
            if alias.cluster is not None:
                self._check_target(where, alias.cluster, alias.adapter)
                self._check_refs(where, ("fallbacks",), alias.fallbacks or [], own=alias.cluster)
            elif alias.default_route not in self.route_by_name:
                self.issues.append(
                    where.issue(
                        ("default_route",), f"alias {name!r} has no route: route {alias.default_route!r} is not defined"
                    )
                )
        for route, where in self.routes:
            self._check_target(where, route.cluster, route.adapter)
            self._check_refs(where, ("fallbacks",), route.fallbacks or [], own=route.cluster)
            for i, m in enumerate(route.match.models or []):
                if m not in self.models:
                    self.issues.append(where.issue(("match", "models", i), f"unknown model alias {m!r}"))
            self._check_tasks(where, route.match)
        self._check_classifier()
        self._check_budgets()

    def _check_budgets(self) -> None:
        names: dict[str, _Where] = {}
        pinned_routes = {f"model:{n}" for n, (a, _) in self.models.items() if a.cluster is not None}
        for budget, where in self.budgets:
            if budget.name in names:
                self.issues.append(
                    where.issue(("name",), f"duplicate budget {budget.name!r} (also in {names[budget.name].doc.file})")
                )
            names[budget.name] = where
            if budget.route not in (None, "*") and budget.route not in set(self.route_by_name) | pinned_routes:
                self.issues.append(where.issue(("route",), f"unknown route {budget.route!r}"))
            if budget.downgrade_to is not None:
                target = self.clusters.get(budget.downgrade_to)
                if target is None:
                    self.issues.append(where.issue(("downgrade_to",), f"unknown cluster {budget.downgrade_to!r}"))
                elif not isinstance(target[0], VllmCluster):
                    self.issues.append(
                        where.issue(
                            ("downgrade_to",), f"cluster {budget.downgrade_to!r} is not a self-hosted (vllm) pool"
                        )
                    )

    def _task_names(self) -> set[str]:
        custom = set(self.classifier[0].tasks) if self.classifier else set()
        return set(TASKS) | custom

    def _check_tasks(self, where: _Where, match: Match) -> None:
        known = self._task_names()
        for i, t in enumerate(match.tasks or []):
            if t not in known:
                self.issues.append(
                    where.issue(
                        ("match", "tasks", i),
                        f"unknown task {t!r}: one of {', '.join(TASKS)} or a `classifier.tasks` name",
                    )
                )
        if match.uses_classifier and self.classifier is not None and not self.classifier[0].enabled:
            self.issues.append(where.issue(("match",), "task/complexity condition, but `classifier.enabled` is false"))

    def _check_classifier(self) -> None:
        if self.classifier is None:
            return
        settings, where = self.classifier
        if settings.low_confidence_route is not None and settings.low_confidence_route not in self.route_by_name:
            self.issues.append(
                where.issue(("low_confidence_route",), f"route {settings.low_confidence_route!r} is not defined")
            )
        for name in settings.tasks:
            if name in TASKS:
                self.issues.append(
                    where.issue(("tasks", name), f"{name!r} is a trained label; a custom task needs its own name")
                )

    def _check_target(self, where: _Where, cluster: str, adapter: str | None) -> None:
        if cluster not in self.clusters:
            self.issues.append(where.issue(("cluster",), f"unknown cluster {cluster!r}"))
            return
        if adapter is None:
            return
        target = self.clusters[cluster][0]
        if not isinstance(target, VllmCluster):
            self.issues.append(where.issue(("adapter",), f"cluster {cluster!r} is not a vllm cluster: no adapters"))
        elif adapter not in target.adapters:
            self.issues.append(where.issue(("adapter",), f"cluster {cluster!r} does not list adapter {adapter!r}"))
        elif not any(adapter in (e.adapters or ()) for e in target.endpoint_specs()):
            self.issues.append(
                where.issue(("adapter",), f"no endpoint of cluster {cluster!r} serves adapter {adapter!r}")
            )

    def _check_refs(self, where: _Where, key: KeyPath, names: list[str], own: str) -> None:
        seen: set[str] = set()
        for i, n in enumerate(names):
            if n not in self.clusters:
                self.issues.append(where.issue((*key, i), f"unknown cluster {n!r}"))
            elif n == own:
                self.issues.append(where.issue((*key, i), f"fallback cycle: {n!r} falls back to itself"))
            elif n in seen:
                self.issues.append(where.issue((*key, i), f"cluster {n!r} is listed twice"))
            seen.add(n)

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done

        def visit(name: str, stack: list[str]) -> None:
            state[name] = 1
            for nxt in self.clusters[name][0].fallbacks:
                if nxt not in self.clusters or nxt == name:
                    continue
                if state.get(nxt) == 1:
                    cycle = " -> ".join([*stack[stack.index(nxt) :], nxt])
                    self.issues.append(self.clusters[name][1].issue(("fallbacks",), f"fallback cycle: {cycle}"))
                elif state.get(nxt) is None:
                    visit(nxt, [*stack, nxt])
            state[name] = 2

        for name in self.clusters:
            if name not in state:
                visit(name, [name])

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
                keep = adapter if isinstance(c, VllmCluster) and adapter in c.adapters else None
                out.append(Target(n, keep))
                add(c.fallbacks)

        add(explicit if explicit is not None else self.clusters[cluster][0].fallbacks)
        return tuple(out)

    def build(self, files: tuple[str, ...]) -> Policy:
        routes = []
        for route, where in self.routes:
            reason = route.description or f"rule {route.name!r} matched ({describe_match(route.match)})"
            decision = Decision(
                route.name,
                self._chain(route.cluster, route.adapter, route.fallbacks),
                reason,
                budget=_budget(route.latency),
            )
            m = route.match
            routes.append(
                CompiledRoute(
                    route,
                    decision,
                    where.doc.file,
                    where.doc.line_of(where.path),
                    re.compile(m.regex) if m.regex is not None else None,
                    keyword_pattern(m.keywords) if m.keywords is not None else None,
                )
            )
        # Stable sort: equal priorities keep file order.
        routes.sort(key=lambda r: -r.route.priority)
        rules = tuple(r for r in routes if not r.route.target_only)
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
                    budget=_budget(alias.latency),
                )
            else:
                assert alias.default_route is not None  # the schema guarantees one of the two
                d = next(r.decision for r in routes if r.route.name == alias.default_route)
                defaults[name] = replace(d, reason=f"no rule matched; default route of alias {name!r}")
        classifier = self.classifier[0] if self.classifier else ClassifierSettings()
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


def _budget(spec: LatencySpec | None) -> LatencyBudget | None:
    if spec is None or (spec.max_ttft_ms is None and spec.max_latency_ms is None):
        return None
    return LatencyBudget(
        spec.max_ttft_ms / 1000 if spec.max_ttft_ms is not None else None,
        spec.max_latency_ms / 1000 if spec.max_latency_ms is not None else None,
    )


def describe_match(match: Match) -> str:
    parts = []
    for key, value in match.model_dump(exclude_none=True).items():
        parts.append(f"{key}={value}")
    return ", ".join(parts) or "matches everything"
