"""Cross-reference checks of a merged policy: routes name existing clusters and adapters, fallback chains
have no cycles, tasks and budgets refer to what exists. Each problem is an issue with file, line and key
path; all of them are collected, not just the first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.classifier.labels import TASKS
from router.errors import PolicyIssue
from router.policy.messages import did_you_mean
from router.policy.schema import FrontierCluster, LatencyBudget, Match, VllmCluster, requires_output_cap
from router.policy.yamlsrc import KeyPath

if TYPE_CHECKING:  # merge builds the tables these functions read; it imports nothing from here
    from router.policy.merge import Merged, Where


def check(m: Merged) -> None:
    """Append every cross-reference problem of ``m`` to ``m.issues``."""
    if not m.models:
        m.issues.append(PolicyIssue("(policy)", None, "models", "no model aliases: clients could call nothing"))
    for name, (cluster, where) in m.clusters.items():
        _check_refs(m, where, ("fallbacks",), cluster.fallbacks, own=name)
        if (
            isinstance(cluster, FrontierCluster)
            and cluster.default_max_tokens is None
            and requires_output_cap(cluster.model)
        ):
            m.issues.append(
                where.issue(
                    ("default_max_tokens",),
                    f"{cluster.model!r} needs an output cap on every request: set `default_max_tokens` "
                    "(sent when a request sets no max_tokens, and reserved against budgets)",
                )
            )
    _check_cycles(m)
    for name, (alias, where) in m.models.items():
        if alias.cluster is not None:
            _check_target(m, where, alias.cluster, alias.adapter)
            _check_refs(m, where, ("fallbacks",), alias.fallbacks or [], own=alias.cluster)
            _check_hedge(m, where, alias.cluster, alias.fallbacks, alias.latency)
        elif alias.default_route not in m.route_by_name:
            m.issues.append(
                where.issue(
                    ("default_route",),
                    f"alias {name!r} has no route: route {alias.default_route!r} is not defined"
                    + did_you_mean(str(alias.default_route), set(m.route_by_name)),
                )
            )
    for route, where in m.routes:
        _check_target(m, where, route.cluster, route.adapter)
        _check_hedge(m, where, route.cluster, route.fallbacks, route.latency)
        _check_refs(m, where, ("fallbacks",), route.fallbacks or [], own=route.cluster)
        _check_match(m, where, route.match)
    _check_classifier(m)
    _check_budgets(m)


def _check_hedge(
    m: Merged, where: Where, cluster: str, fallbacks: list[str] | None, latency: LatencyBudget | None
) -> None:
    """A hedge goes to the chain's next target: a route that hedges needs one."""
    if latency is None or latency.hedge_after_ms is None or cluster not in m.clusters:
        return
    if not (fallbacks if fallbacks is not None else m.clusters[cluster][0].fallbacks):
        m.issues.append(
            where.issue(
                ("latency", "hedge_after_ms"),
                f"a hedge goes to the next target of the chain, and this one has none: add `fallbacks` "
                f"here or on cluster {cluster!r}, or drop hedge_after_ms",
            )
        )


def _check_budgets(m: Merged) -> None:
    names: dict[str, Where] = {}
    pinned_routes = {f"model:{n}" for n, (a, _) in m.models.items() if a.cluster is not None}
    for budget, where in m.budgets:
        if budget.name in names:
            m.issues.append(
                where.issue(("name",), f"duplicate budget {budget.name!r} (also in {names[budget.name].doc.file})")
            )
        names[budget.name] = where
        if budget.route not in (None, "*") and budget.route not in set(m.route_by_name) | pinned_routes:
            known = set(m.route_by_name) | pinned_routes
            m.issues.append(
                where.issue(("route",), f"unknown route {budget.route!r}" + did_you_mean(budget.route, known))
            )
        if budget.downgrade_to is not None:
            target = m.clusters.get(budget.downgrade_to)
            if target is None:
                m.issues.append(
                    where.issue(
                        ("downgrade_to",),
                        f"unknown cluster {budget.downgrade_to!r}" + _cluster_hint(m, budget.downgrade_to),
                    )
                )
            elif not isinstance(target[0], VllmCluster):
                m.issues.append(
                    where.issue(("downgrade_to",), f"cluster {budget.downgrade_to!r} is not a self-hosted (vllm) pool")
                )


def _task_names(m: Merged) -> set[str]:
    custom = set(m.classifier.tasks) if m.classifier else set()
    return set(TASKS) | custom


def _check_match(m: Merged, where: Where, match: Match) -> None:
    """Every block of a rule's match (nested ``any``/``all``/``not`` too) names existing aliases and tasks."""
    known = _task_names(m)
    for block, path in match.blocks():
        if len(path) > 1 and not block.model_fields_set:
            m.issues.append(
                where.issue(
                    path, "an empty block holds for every request (and under `not`, for none): give it conditions"
                )
            )
        for i, alias_name in enumerate(block.models or []):
            if alias_name not in m.models:
                m.issues.append(
                    where.issue(
                        (*path, "models", i),
                        f"unknown model alias {alias_name!r}" + did_you_mean(alias_name, set(m.models)),
                    )
                )
        for i, t in enumerate(block.tasks or []):
            if t not in known:
                m.issues.append(
                    where.issue(
                        (*path, "tasks", i),
                        f"unknown task {t!r}"
                        + (did_you_mean(t, known) or f": one of {', '.join(TASKS)} or a `classifier.tasks` name"),
                    )
                )
    if match.uses_classifier and m.classifier is not None and not m.classifier.enabled:
        m.issues.append(where.issue(("match",), "task/complexity condition, but `classifier.enabled` is false"))


def _check_classifier(m: Merged) -> None:
    if m.classifier is None:
        return
    settings, parts = m.classifier, m.classifier_parts
    where = parts.where("low_confidence_route")
    if (
        where is not None
        and settings.low_confidence_route is not None
        and settings.low_confidence_route not in m.route_by_name
    ):
        m.issues.append(
            where.issue(
                ("low_confidence_route",),
                f"route {settings.low_confidence_route!r} is not defined"
                + did_you_mean(settings.low_confidence_route, set(m.route_by_name)),
            )
        )
    for name in settings.tasks:
        if name in TASKS:
            m.issues.append(
                parts.task_where(name).issue(
                    ("tasks", name), f"{name!r} is a trained label; a custom task needs its own name"
                )
            )


def _check_target(m: Merged, where: Where, cluster: str, adapter: str | None) -> None:
    if cluster not in m.clusters:
        m.issues.append(where.issue(("cluster",), f"unknown cluster {cluster!r}" + _cluster_hint(m, cluster)))
        return
    if adapter is None:
        return
    target = m.clusters[cluster][0]
    if not isinstance(target, VllmCluster):
        m.issues.append(where.issue(("adapter",), f"cluster {cluster!r} is not a vllm cluster: no adapters"))
    elif adapter not in target.adapters:
        m.issues.append(where.issue(("adapter",), f"cluster {cluster!r} does not list adapter {adapter!r}"))
    elif not any(adapter in (e.adapters or ()) for e in target.endpoint_specs()):
        m.issues.append(where.issue(("adapter",), f"no endpoint of cluster {cluster!r} serves adapter {adapter!r}"))


def _check_refs(m: Merged, where: Where, key: KeyPath, names: list[str], own: str) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n not in m.clusters:
            m.issues.append(where.issue((*key, i), f"unknown cluster {n!r}" + _cluster_hint(m, n)))
        elif n == own:
            m.issues.append(where.issue((*key, i), f"fallback cycle: {n!r} falls back to itself"))
        elif n in seen:
            m.issues.append(where.issue((*key, i), f"cluster {n!r} is listed twice"))
        seen.add(n)


def _cluster_hint(m: Merged, name: str) -> str:
    return did_you_mean(name, set(m.clusters))


def _check_cycles(m: Merged) -> None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for nxt in m.clusters[name][0].fallbacks:
            if nxt not in m.clusters or nxt == name:
                continue
            if state.get(nxt) == 1:
                cycle = " -> ".join([*stack[stack.index(nxt) :], nxt])
                m.issues.append(m.clusters[name][1].issue(("fallbacks",), f"fallback cycle: {cycle}"))
            elif state.get(nxt) is None:
                visit(nxt, [*stack, nxt])
        state[name] = 2

    for name in m.clusters:
        if name not in state:
            visit(name, [name])
